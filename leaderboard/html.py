"""The static ``index.html`` of the leaderboard.

One self-contained file (inline CSS and JavaScript, no CDN, no fonts to fetch)
that works from ``file://``: per benchmark, one table per group of comparable
rows (see :mod:`leaderboard.table`), sortable by any column, each cell the
mean over splits with its spread underneath; the plots and qualitative panels
as relative ``<img>`` links into the output folder. Every metric column fits
a 1400-pixel-wide window (the method column stays in view when a narrower one
scrolls the table). Sorting: click a column header (again to reverse), or
open the page with ``#sort=<column>`` (``#sort=<column>:asc`` / ``:desc``),
which sorts every table that has that column once the page has loaded;
numbers sort high-to-low first (ranks low-to-high), undefined values always
last, ties keep the build order.

Every string from a result file goes through :func:`leaderboard.text.html`
and every link through :func:`leaderboard.text.safe_url`.
"""

from __future__ import annotations

from urllib.parse import quote

from leaderboard import __version__
from leaderboard import text as t
from leaderboard.table import AVERAGES, COLUMNS, DESCRIPTIONS, GROUPING_RULE, RANKING_RULE, SPREAD_RULE, Group, \
    Row, Section, marks, percent, splits_text

esc = t.html
slug = t.slug


def _a(label: str, url: str | None) -> str:
    url = t.safe_url(url)
    return f'<a href="{esc(url)}">{esc(label)}</a>' if url else esc(label)


def _num_td(v, mark: str | None, sd=None) -> str:
    cls = f' class="{mark}"' if mark else ""
    data = "" if v is None else f"{100.0 * v:.6f}"
    extra = "" if sd is None else f'<span class="sd" title="standard deviation over the splits">±{percent(sd)}</span>'
    return f'<td data-v="{data}"{cls}>{esc(percent(v))}{extra}</td>'


def _rank_td(row: Row) -> str:
    return (f'<td class="rank" data-v="{"" if row.rank is None else row.rank}">'
            f'{"–" if row.rank is None else row.rank}</td>')


def _method_td(row: Row) -> str:
    links = []
    if row.unpublished:
        name = f'<span class="method">{esc(row.method)}</span>'
        badges = ['<span class="badge unpub" title="this configuration is not published; its numbers are '
                  'this suite\'s own">unpublished preset</span>']
        if row.code_folder:
            links.append(f'code <code>{esc(row.code_folder)}</code>')
        elif t.safe_url(row.code):
            links.append(_a("code", row.code))
        if t.safe_url(row.paper):
            links.append(_a("method paper", row.paper))
    else:
        name = f'<span class="method">{_a(row.method, row.paper or row.code)}</span>'
        badges = ['<span class="badge">reported</span>'] if row.kind == "reported" else []
        for label, url in (("paper", row.paper), ("code", row.code)):
            if t.safe_url(url):
                links.append(_a(label, url))
    if row.partial:
        badges.append('<span class="badge partial" title="covers only some splits of the benchmark">partial</span>')
    parts = [name, *badges]
    if links:
        parts.append(f'<span class="links">{" · ".join(links)}</span>')
    if row.kind == "scored":
        facts = [f"submission {esc(row.submission)}"]
        if row.preset:
            facts.append(f"preset {esc(row.preset)}")
        if isinstance(row.backbone, str) and row.backbone:
            facts.append(esc(row.backbone))
        if isinstance(row.params_m, (int, float)) and not isinstance(row.params_m, bool):
            facts.append(f"{row.params_m:.1f} M params")
        facts.append(f"evaluator {esc(row.evaluator_version)}")
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
    return f'<td class="m" data-v="{esc(row.method.casefold())}">{"".join(parts)}</td>'


def _table(rows: list[Row], table_id: str, kind: str, setting_column: bool = False) -> str:
    m = marks(rows)
    head = ['<th data-col="Rank" data-type="num" data-dir="asc" title="rank by mAD within the group">#</th>',
            '<th class="m" data-col="Method" data-type="text">Method</th>']
    if setting_column:
        head.append('<th class="setting" data-col="Setting" data-type="text" '
                    'title="evaluator profile, pool and AUPRO steps">Setting</th>')
    head += [f'<th data-col="{esc(c)}" data-type="num" title="{esc(DESCRIPTIONS[c])}">{esc(c)}</th>' for c in COLUMNS]
    body = []
    for i, row in enumerate(rows):
        tds = [_rank_td(row), _method_td(row)]
        if setting_column:
            tds.append(f'<td class="setting" data-v="{esc(row.setting)}">{esc(row.setting)}</td>')
        sd = row.spread or {}
        tds += [_num_td(row.values[c], m.get((i, c)), sd.get(c)) for c in COLUMNS]
        body.append(f'<tr class="{kind}" data-key="{esc(row.key)}" data-i="{i}">{"".join(tds)}</tr>')
    return (f'<div class="tw"><table class="lb sortable {kind}" id="{esc(table_id)}">\n'
            f'<thead><tr>{"".join(head)}</tr></thead>\n<tbody>\n' + "\n".join(body) + "\n</tbody>\n</table></div>")


def group_ids(sec: Section) -> dict:
    """``{group key: table id}``: ``t-<benchmark>-<setting and splits>[-partial]`` or ``t-<benchmark>-<source>``."""
    tails = []
    for g in sec.groups:
        if g.kind == "reported":
            tails.append(g.source.key)
        else:
            tails.append(f"{g.setting} {' '.join(g.split_ids)}" + (" partial" if g.partial else ""))
    return {g.key: f"t-{sec.slug}-{tail}" for g, tail in zip(sec.groups, t.unique_slugs(tails))}


def _group(sec: Section, g: Group, table_id: str) -> str:
    out = [f'<h3 class="group">{esc(g.heading)}</h3>']
    if g.kind == "scored":
        if g.partial:
            out.append(f'<p class="warn">These results cover {esc(splits_text(g.split_ids))} of the benchmark '
                       f'only, so they are ranked among themselves and never against complete results.</p>')
        out.append(f"<p>Benchmark build version {esc(g.benchmark_version)}, sha256 "
                   f"<code>{esc(g.benchmark_sha256)}</code>; setting {esc(g.setting)}; mean over "
                   f"{esc(splits_text(g.split_ids))} ± standard deviation over them, in percent.</p>")
        out.append(_table(g.rows, table_id, "scored"))
    else:
        src = g.source
        comparable = (f" Scored rows of the <code>{esc(src.comparable_profile)}</code> profile are the ones "
                      f"comparable with these." if src.comparable_profile else "")
        out.append(f'<p class="reported-note">Published numbers, not scored here: '
                   f'{_a(src.citation, src.url)}; {esc(src.metric_code)}.{comparable} Ranked only among '
                   f'themselves.</p>')
        out.append(_table(g.rows, table_id, "reported"))
    return "\n".join(out)


def _figure(stem: str, caption: str) -> str:
    return (f'<figure class="plot"><a href="{esc(stem)}.png"><img src="{esc(stem)}.svg" alt="{esc(caption)}">'
            f'</a><figcaption>{esc(caption)} (<a href="{esc(stem)}.png">PNG</a>, '
            f'<a href="{esc(stem)}.svg">SVG</a>)</figcaption></figure>')


def render_section(sec: Section, plots: dict, panels: dict) -> str:
    """``plots``: {kind: relative stem}; ``panels``: {result key: [(caption, relative file)]}."""
    sid = sec.slug
    out = [f'<section class="benchmark" id="b-{esc(sid)}" data-benchmark="{esc(sec.benchmark)}">',
           f"<h2>{esc(sec.benchmark)}</h2>"]
    if not sec.scored_groups:
        out.append("<p>No scored results for this benchmark yet.</p>")
    if len(sec.builds) > 1:
        out.append('<p class="warn">Scored rows of this benchmark come from different builds of it (different '
                   'sha256): each build is ranked apart.</p>')
    ids = group_ids(sec)
    out += [_group(sec, g, ids[g.key]) for g in sec.groups]
    if sec.scored and len(sec.splits) > 1:
        out.append('<h3>Per split</h3><p>Every result that scored the split, ranked among rows of the same '
                   'setting.</p>')
        for split, rows in sec.splits.items():
            out.append(f"<h4>Split {esc(split)}</h4>")
            out.append(_table(rows, f"t-{sid}-split-{slug(split)}", "scored", setting_column=True))
    if plots:
        out.append("<h3>Plots</h3>")
        captions = {"metrics": "Grouped bars per metric, one panel per group",
                    "splits": "Per-split breakdown",
                    "sweeps": "Threshold sweeps: F1, IoU and recall against the normalised threshold"}
        out += [_figure(stem, captions[k]) for k, stem in plots.items()]
    shown = [(row, panels[row.key]) for row, _ in sec.panels if panels.get(row.key)]
    if shown:
        out.append("<h3>Qualitative panels</h3><p>Image | ground truth | anomaly-map overlay, as written by "
                   "<code>evaluator score --panels N</code>; once per submission.</p>")
        for row, items in shown:
            figs = "".join(f'<figure class="panel"><img src="{esc(quote(f))}" alt="{esc(c)}" loading="eager">'
                           f"<figcaption>{esc(c)}</figcaption></figure>" for c, f in items)
            out.append(f'<div class="panels"><h4>{esc(row.method)} · submission {esc(row.submission)}</h4>'
                       f'{figs}</div>')
    out.append("</section>")
    return "\n".join(out)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:1.5em auto;
max-width:1500px;padding:0 1em;color:#1b1b1b}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}h3.group{margin-bottom:.2em}
div.tw{overflow-x:auto;margin:.6em 0 1.2em;max-width:100%}
table.lb{border-collapse:separate;border-spacing:0;font-variant-numeric:tabular-nums;font-size:12px}
table.lb th,table.lb td{border-bottom:1px solid #ddd;padding:.25em .35em;text-align:right;vertical-align:top;
white-space:nowrap}
table.lb th.m,table.lb td.m{text-align:left;white-space:normal;min-width:13em;max-width:21em;
overflow-wrap:anywhere;position:sticky;left:0;background:#fff;z-index:1;border-right:1px solid #eee}
table.lb th.m{background:#f3f3f3}table.lb td.setting,table.lb th.setting{text-align:left;white-space:normal;
min-width:7em;max-width:10em}
table.lb td.rank{color:#555}
table.lb th{background:#f3f3f3;cursor:pointer;user-select:none}
table.lb th[aria-sort=descending]::after{content:" \\25BC"}table.lb th[aria-sort=ascending]::after{content:" \\25B2"}
table.reported{color:#444}table.reported td.m{background:#fafafa}table.reported th{background:#ececec}
td.best{font-weight:bold}td.second{font-style:italic}
span.sd{display:block;font-size:10px;color:#888;font-weight:normal;font-style:normal}
.badge{display:inline-block;margin-left:.4em;padding:0 .35em;border-radius:3px;background:#777;color:#fff;
font-size:11px}.badge.unpub{background:#8a5a00}.badge.partial{background:#a33}
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
  function defaultDir(th) {
    return th.getAttribute("data-dir") || (th.getAttribute("data-type") === "num" ? "desc" : "asc");
  }
  function sortTable(table, col, dir) {
    var ths = table.tHead.rows[0].cells, idx = -1, i;
    for (i = 0; i < ths.length; i++) {
      if (ths[i].getAttribute("data-col") === col) idx = i;
      ths[i].removeAttribute("aria-sort");
    }
    if (idx < 0) return false;
    var type = ths[idx].getAttribute("data-type");
    if (!dir) dir = defaultDir(ths[idx]);
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
        var cur = th.getAttribute("aria-sort"), def = defaultDir(th);
        var dir = cur ? (cur === "descending" ? "asc" : "desc") : def;
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
  // Mark every image that decoded and every table wider than its box, so a headless browser
  // test can check that the page renders and that all columns fit the window.
  window.addEventListener("load", function () {
    var imgs = document.querySelectorAll("img"), ok = 0;
    Array.prototype.forEach.call(imgs, function (img) {
      var good = img.complete && img.naturalWidth > 0;
      img.setAttribute("data-ok", good ? "1" : "0");
      if (good) ok++;
    });
    document.body.setAttribute("data-images", ok + "/" + imgs.length);
    var over = 0, widest = 0;
    Array.prototype.forEach.call(document.querySelectorAll("div.tw"), function (w) {
      var right = w.firstElementChild.getBoundingClientRect().right;
      widest = Math.max(widest, Math.ceil(right));
      if (w.scrollWidth > w.clientWidth + 1) over++;
    });
    document.body.setAttribute("data-overflow", over + ":" + widest + ":" + window.innerWidth);
  });
})();
"""


def _legend() -> str:
    avgs = "; ".join(f"<code>{esc(name)}</code> = mean of {esc(', '.join(parts))}" for name, parts in AVERAGES)
    return f"<p>Averages: {avgs}. {esc(SPREAD_RULE)}</p>"


def _sources(sections: list[Section]) -> str:
    seen = {}
    for sec in sections:
        for g in sec.reported_groups:
            seen.setdefault(g.source.key, g.source)
    if not seen:
        return ""
    items = []
    for src in seen.values():
        cmp = (f"; compare with scored rows of the <code>{esc(src.comparable_profile)}</code> profile"
               if src.comparable_profile else "")
        items.append(f"<li>{esc(src.title)}: {esc(src.metric_code)}{cmp}.</li>")
    return (f"<p>Published numbers, each source a group of its own, never ranked with scored rows:</p>"
            f"<ul>{''.join(items)}</ul>")


def render(sections: list[Section], plots: dict, panels: dict, n_results: int) -> str:
    """The whole page. ``plots``: {benchmark: {kind: stem}}; ``panels``: {result key: [(caption, file)]}."""
    nav = " · ".join(f'<a href="#b-{esc(s.slug)}">{esc(s.benchmark)}</a>' for s in sections)
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
{esc(GROUPING_RULE)} {esc(RANKING_RULE)} Click a column header to sort; <code>#sort=&lt;column&gt;</code> in the
address sorts on load.</p>
{_legend()}
{_sources(sections)}
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
