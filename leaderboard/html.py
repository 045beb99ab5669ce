"""The static ``index.html`` of the leaderboard.

One self-contained file (inline CSS and JavaScript, no CDN, no fonts to fetch)
that works from ``file://``: the tables of every section, sortable by any
column, the plots and qualitative panels as relative ``<img>`` links into the
output folder. Sorting: click a column header (again to reverse), or open the
page with ``#sort=<column>`` (``#sort=<column>:asc`` / ``:desc``), which sorts
every table that has that column once the page has loaded; numbers sort
high-to-low first, undefined values always last, ties keep the build order.
"""

from __future__ import annotations

import html
import re

from leaderboard import __version__
from leaderboard.table import COLUMNS, DESCRIPTIONS, RANKING_RULE, Row, Section, benchmark_checksums, marks, \
    percent, reported_source


def esc(text) -> str:
    return html.escape(str(text), quote=True)


def slug(text: str) -> str:
    """A file- and id-safe form of a benchmark name."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return s or "benchmark"


def _safe_url(url: str | None) -> str | None:
    # Only web links: a result file must not be able to inject javascript: URLs.
    if url and re.match(r"^https?://[^\s\"'<>]+$", url):
        return url
    return None


def _a(text: str, url: str | None) -> str:
    url = _safe_url(url)
    return f'<a href="{esc(url)}">{esc(text)}</a>' if url else esc(text)


def _num_td(v, mark: str | None) -> str:
    cls = f' class="{mark}"' if mark else ""
    data = "" if v is None else f"{100.0 * v:.6f}"
    return f'<td data-v="{data}"{cls}>{esc(percent(v))}</td>'


def _method_td(row: Row) -> str:
    links = []
    for name, url in (("paper", row.paper), ("code", row.code)):
        if _safe_url(url):
            links.append(_a(name, url))
    parts = [f'<span class="method">{_a(row.method, row.paper or row.code)}</span>']
    if row.kind == "reported":
        parts.append('<span class="badge">reported</span>')
    if links:
        parts.append(f'<span class="links">{" · ".join(links)}</span>')
    if row.kind == "scored":
        facts = [f"submission {esc(row.submission)}"]
        if isinstance(row.backbone, str) and row.backbone:
            facts.append(esc(row.backbone))
        if isinstance(row.params_m, (int, float)) and not isinstance(row.params_m, bool):
            facts.append(f"{row.params_m:.1f} M params")
        parts.append(f'<div class="sub" title="submission sha256 {esc(row.submission_sha256)}; '
                     f'{row.n_images} test images, {row.n_anomalous} anomalous; scored in {row.seconds:.1f} s">'
                     f'{" · ".join(facts)}</div>')
        if row.warnings:
            items = "".join(f"<li>{esc(w)}</li>" for w in row.warnings[:50])
            more = f"<li>… {len(row.warnings) - 50} more in the result file</li>" if len(row.warnings) > 50 else ""
            parts.append(f'<details class="sub"><summary>{len(row.warnings)} warning'
                         f'{"s" if len(row.warnings) != 1 else ""}</summary><ul>{items}{more}</ul></details>')
    elif row.note:
        parts.append(f'<div class="sub">{esc(row.note)}</div>')
    return f'<td data-v="{esc(row.method.casefold())}">{"".join(parts)}</td>'


def _table(rows: list[Row], table_id: str, kind: str) -> str:
    m = marks(rows)
    head = ['<th data-col="Method" data-type="text">Method</th>']
    if kind == "scored":
        head += ['<th data-col="Profile" data-type="text" title="evaluator profile (SPEC §5)">Profile</th>',
                 '<th data-col="Evaluator" data-type="text" title="evaluator version">Evaluator</th>',
                 '<th data-col="Benchmark" data-type="text" title="benchmark version and sha256 of benchmark.json">'
                 'Benchmark</th>']
    head += [f'<th data-col="{esc(c)}" data-type="num" title="{esc(DESCRIPTIONS[c])}">{esc(c)}</th>' for c in COLUMNS]
    body = []
    for i, row in enumerate(rows):
        tds = [_method_td(row)]
        if kind == "scored":
            tds += [f'<td data-v="{esc(row.profile)}">{esc(row.profile)}</td>',
                    f'<td data-v="{esc(row.evaluator_version)}">{esc(row.evaluator_version)}</td>',
                    f'<td data-v="{esc(row.benchmark_sha256)}"><span title="benchmark version '
                    f'{esc(row.benchmark_version)}, sha256 {esc(row.benchmark_sha256)}">v{esc(row.benchmark_version)} '
                    f'<code>{esc(row.benchmark_sha256[:12])}</code></span></td>']
        tds += [_num_td(row.values[c], m.get((i, c))) for c in COLUMNS]
        body.append(f'<tr class="{kind}" data-key="{esc(row.key)}" data-i="{i}">{"".join(tds)}</tr>')
    return (f'<div class="tw"><table class="lb sortable {kind}" id="{esc(table_id)}">\n'
            f'<thead><tr>{"".join(head)}</tr></thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody>\n</table></div>")


def _figure(stem: str, caption: str) -> str:
    return (f'<figure class="plot"><a href="{esc(stem)}.png"><img src="{esc(stem)}.svg" alt="{esc(caption)}">'
            f'</a><figcaption>{esc(caption)} (<a href="{esc(stem)}.png">PNG</a>, '
            f'<a href="{esc(stem)}.svg">SVG</a>)</figcaption></figure>')


def render_section(sec: Section, plots: dict, panels: dict) -> str:
    """``plots``: {kind: relative stem}; ``panels``: {result rel: [(caption, relative file)]}."""
    sid = slug(sec.benchmark)
    out = [f'<section class="benchmark" id="b-{esc(sid)}" data-benchmark="{esc(sec.benchmark)}">',
           f"<h2>{esc(sec.benchmark)}</h2>"]
    if sec.scored:
        sums = benchmark_checksums(sec.scored)
        out.append(f"<p>Scored by the evaluator; mean over split{'s' if len(sec.splits) > 1 else ''} "
                   f"{esc(', '.join(sec.splits))}, in percent. Benchmark "
                   + ", ".join(f"version {esc(v)}, sha256 <code>{esc(s)}</code>" for v, s in sums) + ".</p>")
        if len(sums) > 1:
            out.append('<p class="warn">These rows were scored on different builds of the benchmark '
                       '(different sha256): they are not strictly comparable.</p>')
        out.append(_table(sec.scored, f"t-{sid}-scored", "scored"))
    else:
        out.append("<p>No scored results for this benchmark yet.</p>")
    if sec.reported:
        src = reported_source()
        out.append(f'<h3>Reported in the paper</h3><p class="reported-note">Published numbers from '
                   f'{_a(src["title"], src["url"])}, computed with ADer\'s metric code (comparable with the '
                   f'<code>ader</code> profile). They were not scored here and are ranked only among '
                   f'themselves.</p>')
        out.append(_table(sec.reported, f"t-{sid}-reported", "reported"))
    if sec.scored and len(sec.splits) > 1:
        out.append("<h3>Per split</h3>")
        for split, rows in sec.splits.items():
            out.append(f"<h4>Split {esc(split)}</h4>")
            out.append(_table(rows, f"t-{sid}-split-{slug(split)}", "scored"))
    if plots:
        out.append("<h3>Plots</h3>")
        captions = {"metrics": "Grouped bars per metric", "splits": "Per-split breakdown",
                    "sweeps": "Threshold sweeps: F1, IoU and recall against the normalised threshold"}
        out += [_figure(stem, captions[k]) for k, stem in plots.items()]
    if panels:
        out.append("<h3>Qualitative panels</h3><p>Image | ground truth | anomaly-map overlay, as written by "
                   "<code>evaluator score --panels N</code>.</p>")
        for row in sec.scored:
            items = panels.get(row.key)
            if not items:
                continue
            figs = "".join(f'<figure class="panel"><img src="{esc(f)}" alt="{esc(c)}" loading="eager">'
                           f"<figcaption>{esc(c)}</figcaption></figure>" for c, f in items)
            out.append(f'<div class="panels"><h4>{esc(row.label)}</h4>{figs}</div>')
    out.append("</section>")
    return "\n".join(out)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1.5em auto;
max-width:1500px;padding:0 1em;color:#1b1b1b}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}
div.tw{overflow-x:auto;margin:.6em 0 1.2em}
table.lb{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:12px}
table.lb th,table.lb td{border-bottom:1px solid #ddd;padding:.25em .4em;text-align:right;vertical-align:top;
white-space:nowrap}
table.lb th:first-child,table.lb td:first-child{text-align:left}
table.lb th{background:#f3f3f3;cursor:pointer;user-select:none}
table.lb th[aria-sort=descending]::after{content:" \\25BC"}table.lb th[aria-sort=ascending]::after{content:" \\25B2"}
table.reported{background:#fafafa;color:#444}table.reported th{background:#ececec}
td.best{font-weight:bold}td.second{text-decoration:underline}
.badge{display:inline-block;margin-left:.4em;padding:0 .35em;border-radius:3px;background:#777;color:#fff;
font-size:11px}
.links{margin-left:.5em;font-size:12px}.sub{color:#666;font-size:11px;margin-top:.15em}
.warn{color:#a33}code{font-size:12px}
figure.plot{margin:1em 0}figure.plot img{max-width:100%;border:1px solid #eee}
.panels{display:flex;flex-wrap:wrap;gap:.6em;align-items:flex-start}.panels h4{width:100%;margin:.6em 0 0}
figure.panel{margin:0}figure.panel img{max-width:480px;border:1px solid #eee}figcaption{font-size:12px;color:#555}
dl.legend dt{font-family:monospace;float:left;clear:left;width:8em}dl.legend dd{margin-left:8.5em}
"""

JS = r"""
(function () {
  "use strict";
  function cellValue(row, idx, type) {
    var v = row.cells[idx].getAttribute("data-v");
    if (v === null || v === "") return null;
    return type === "num" ? parseFloat(v) : v;
  }
  function sortTable(table, col, dir) {
    var ths = table.tHead.rows[0].cells, idx = -1, i;
    for (i = 0; i < ths.length; i++) {
      if (ths[i].getAttribute("data-col") === col) idx = i;
      ths[i].removeAttribute("aria-sort");
    }
    if (idx < 0) return false;
    var type = ths[idx].getAttribute("data-type");
    if (!dir) dir = type === "num" ? "desc" : "asc";
    var sign = dir === "asc" ? 1 : -1, body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, idx, type), y = cellValue(b, idx, type);
      if (x === null || y === null) {
        if (x === y) return a.getAttribute("data-i") - b.getAttribute("data-i");
        return x === null ? 1 : -1;  // undefined values last, in either direction
      }
      var c = type === "num" ? x - y : (x < y ? -1 : x > y ? 1 : 0);
      return c !== 0 ? sign * c : a.getAttribute("data-i") - b.getAttribute("data-i");
    });
    rows.forEach(function (r) { body.appendChild(r); });
    ths[idx].setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
    table.setAttribute("data-sorted", col + ":" + dir);
    return true;
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      th.addEventListener("click", function () {
        var cur = th.getAttribute("aria-sort"), type = th.getAttribute("data-type");
        var dir = cur ? (cur === "descending" ? "asc" : "desc") : (type === "num" ? "desc" : "asc");
        sortTable(table, th.getAttribute("data-col"), dir);
      });
    });
  });
  function sortFromHash() {
    var m = /^#sort=([^:]+)(?::(asc|desc))?$/.exec(decodeURIComponent(location.hash));
    if (!m) return;
    var n = 0;
    Array.prototype.forEach.call(tables, function (t) { if (sortTable(t, m[1], m[2])) n++; });
    document.body.setAttribute("data-sort", m[1] + ":" + (m[2] || "default") + ":" + n);
  }
  sortFromHash();
  window.addEventListener("hashchange", sortFromHash);
  // Mark every image that decoded, so a headless browser test can check the page really renders.
  window.addEventListener("load", function () {
    var imgs = document.querySelectorAll("img"), ok = 0;
    Array.prototype.forEach.call(imgs, function (img) {
      var good = img.complete && img.naturalWidth > 0;
      img.setAttribute("data-ok", good ? "1" : "0");
      if (good) ok++;
    });
    document.body.setAttribute("data-images", ok + "/" + imgs.length);
  });
})();
"""


def render(sections: list[Section], plots: dict, panels: dict, n_results: int) -> str:
    """The whole page. ``plots``: {benchmark: {kind: stem}}; ``panels``: {result rel: [(caption, file)]}."""
    nav = " · ".join(f'<a href="#b-{esc(slug(s.benchmark))}">{esc(s.benchmark)}</a>' for s in sections)
    legend = "".join(f"<dt>{esc(c)}</dt><dd>{esc(DESCRIPTIONS[c])}</dd>" for c in COLUMNS)
    body = "\n".join(render_section(s, plots.get(s.benchmark, {}), panels) for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="coco-ad leaderboard {esc(__version__)}">
<title>COCO-AD leaderboard</title>
<style>{CSS}</style>
</head>
<body>
<header>
<h1>COCO-AD leaderboard</h1>
<p>Built by <code>python -m leaderboard build</code> (leaderboard {esc(__version__)}) from {n_results} evaluator result
file{"s" if n_results != 1 else ""}. Values are percentages with one decimal; – marks an undefined metric.
{esc(RANKING_RULE)} Click a column header to sort; <code>#sort=&lt;column&gt;</code> in the address sorts on load.</p>
<nav>{nav}</nav>
</header>
<main>
{body}
</main>
<footer>
<h2>Columns</h2>
<dl class="legend">{legend}</dl>
</footer>
<script>{JS}</script>
</body>
</html>
"""
