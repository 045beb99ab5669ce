"""Issue 11 #2 and #4: free text from result files never becomes markup, links or mathtext.

leaderboard.md is rendered with markdown-it-py (CommonMark + GFM tables, raw HTML allowed, as READMEs and
docs sites render it) and the HTML it yields, like index.html, is parsed: no tag, attribute or link may come
from a result file.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt

from leaderboard import text as t
from leaderboard.build import build

from .conftest import make_result

EVIL = {
    "method": "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(2)) $\\frac{1}{0}$ Good\u202e00.001 | ssap",
    "benchmark": "<b>bench</b>\r\n<script>alert(3)</script> $x^$",
    "paper": "https://example.org/a\n<script>alert(4)</script>",
    "code": "https://example.org/(<img src=x onerror=alert(5)>)",
    "backbone": "<svg onload=alert(6)>",
    "warning": "<script>alert(7)</script>\r\n| x |",
}
#: Tags and attributes the two renderers may produce; anything else came from an input.
TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "h4", "p", "nav", "a", "main",
        "section", "div", "table", "thead", "tbody", "tr", "th", "td", "span", "code", "details", "summary", "ul",
        "li", "figure", "img", "figcaption", "footer", "dl", "dt", "dd", "script", "strong", "em", "hr"}
ATTRS = {"charset", "name", "content", "lang", "href", "id", "class", "data-benchmark", "data-col", "data-type",
         "data-dir", "title", "data-key", "data-i", "data-v", "src", "alt", "loading", "style"}


class _Markup(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.links, self.scripts = set(), set(), [], 0

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.scripts += tag == "script"
        for k, v in attrs:
            self.attrs.add(k)
            if k in ("href", "src"):
                self.links.append(v or "")


def _parse(html: str) -> _Markup:
    m = _Markup()
    m.feed(html)
    return m


@pytest.fixture(scope="module")
def evil_board(tmp_path_factory):
    from .conftest import own_checks_if_needed

    root = tmp_path_factory.mktemp("evil")
    res = root / "results"
    p = make_result(res, "evil.exact", method=EVIL["method"], benchmark=EVIL["benchmark"], paper=EVIL["paper"],
                    code=EVIL["code"], panels=1, method_extra={"backbone": EVIL["backbone"]})
    make_result(res, "plain.exact", method="Plain", benchmark=EVIL["benchmark"], paper=EVIL["code"], code=None)
    obj = json.loads(p.read_text())
    obj["warnings"] = [EVIL["warning"]]
    p.write_text(json.dumps(obj))
    with own_checks_if_needed():
        # the build itself is the test of issue 11 #4: '$\frac{1}{0}$' used to stop it in matplotlib's mathtext
        build(res, root / "out", quiet=True, reported=None)
    return root / "out"


def test_markdown_renders_no_markup_from_inputs(evil_board):
    md = (evil_board / "leaderboard.md").read_text()
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    m = _parse(html)
    assert m.tags <= {"h1", "h2", "h3", "p", "table", "thead", "tbody", "tr", "th", "td", "strong", "em", "code",
                      "ul", "li", "a"}, m.tags
    assert m.attrs <= {"href", "style"}  # markdown-it aligns cells with style="text-align:…"
    assert m.scripts == 0 and "<script" not in html and "<img" not in html and "<svg" not in html
    assert all(u.startswith("https://") for u in m.links), m.links
    # the hostile names are shown, as text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;alert(3)&lt;/script&gt;" in html
    # every row keeps its columns: no '|', CR or LF in a name split a cell or a row
    tables = re.findall(r"<table>(.*?)</table>", html, re.S)
    assert tables
    for table in tables:
        n = len(re.findall(r"<th[ >]", table.split("</thead>")[0]))
        rows = re.findall(r"<tr>(.*?)</tr>", table.split("</thead>")[1], re.S)
        assert rows and all(r.count("<td") == n for r in rows)


def test_page_has_no_markup_from_inputs(evil_board):
    page = (evil_board / "index.html").read_text()
    m = _parse(page)
    assert m.tags <= TAGS and m.attrs <= ATTRS | {"data-ok"}, (m.tags - TAGS, m.attrs - ATTRS)
    assert m.scripts == 1  # ours
    assert all(u.startswith(("https://", "#", "plots/", "panels/")) for u in m.links), m.links
    assert "example.org/a" not in page  # the paper URL with a newline is not linked at all
    assert 'href="https://example.org/(' not in page  # nor the one with markup in it


def test_bidi_overrides_are_stripped_everywhere(evil_board):
    for name in ("leaderboard.md", "index.html", "leaderboard.csv"):
        s = (evil_board / name).read_text()
        assert not any(c in s for c in t.BIDI), name
        assert "Good00.001" in s


def test_csv_cells_cannot_run_as_spreadsheet_formulas(tmp_path, own_checks):
    res = tmp_path / "r"
    make_result(res, "f.exact", method="=HYPERLINK(\"https://evil\")", splits=("0",), sweeps=False,
                benchmark_splits=("0",))
    build(res, tmp_path / "out", quiet=True, reported=None)
    csv = (tmp_path / "out" / "leaderboard.csv").read_text()
    assert "'=HYPERLINK" in csv and ",=HYPERLINK" not in csv


@pytest.mark.parametrize("url, ok", [
    ("https://arxiv.org/abs/2404.10760", True),
    ("http://example.org/a_b(c)?x=1&y=2#f", True),
    ("javascript:alert(1)", False),
    ("https://example.org/a b", False),
    ("https://example.org/a\n<script>", False),
    ("https://example.org/\u202egnp.exe", False),
    ("https://", False),
    ("ftp://example.org/x", False),
    ("https://example.org/\"onmouseover=alert(1)", False),
    ("//example.org/x", False),
])
def test_safe_url(url, ok):
    assert (t.safe_url(url) == url) is ok


def test_markdown_escape_closed_forms():
    assert t.md("a|b") == "a\\|b"
    assert t.md("<b>&") == "&lt;b&gt;&amp;"
    assert t.md("x\r\ny") == "x  y"
    assert t.md("InvAD-tiny 1.0") == "InvAD-tiny 1.0"  # nothing needless
    assert t.md("*a* _b_ `c` [d] ~e~ $f$") == "\\*a\\* \\_b\\_ \\`c\\` \\[d\\] \\~e\\~ \\$f\\$"
    assert t.plot("$x$") == "\\$x\\$" and t.plot("_hidden") == " _hidden"


def test_unwritable_text_and_file_names(tmp_path, own_checks):
    """Lone surrogates in names and non-UTF-8 or control characters in file names: shown or skipped, no traceback."""
    import os

    res = tmp_path / "r"
    p = make_result(res, "s.exact", method="bad \ud800 name", splits=("0",), sweeps=False, benchmark_splits=("0",))
    assert "\\ud800" in p.read_text()  # JSON spells the lone surrogate as an escape
    odd = os.fsencode(res) + b"/odd-\xff.json"
    with open(odd, "wb") as f:
        f.write(b'{"evaluator": {}}')
    (res / "ctl\nname.json").write_text('{"evaluator": {}}')
    notes = []
    build(res, tmp_path / "out", quiet=True, reported=None, note=notes.append)
    assert len(notes) == 2 and all("not plain UTF-8 text" in n for n in notes)
    assert "bad ? name" in (tmp_path / "out" / "leaderboard.md").read_text()
