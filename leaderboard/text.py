"""Free text from result files made safe to show: on the page, in Markdown, in plots.

Method, submission and benchmark names, notes, warnings and links come from
strangers' files. Whatever a renderer shows goes through one of these
functions first:

- :func:`clean` for every displayed string: lone surrogates become ``?``;
  bidirectional embedding and
  override characters (U+202A–U+202E, U+2066–U+2069, and the marks U+200E,
  U+200F, U+061C) are removed, because they reorder what follows them
  (``"Good\\u202e00.001 | ssap"`` shows as "Goodpass | 100.00"); other control
  characters (C0, C1, line and paragraph separators) become spaces.
- :func:`md` for Markdown (GitHub-flavoured, rendered with HTML allowed):
  cleaned, then HTML-escaped and every Markdown-active character
  backslash-escaped, so a name can neither open a tag nor a link nor break a
  table cell.
- :func:`html` for the page: cleaned and HTML-escaped, quotes included.
- :func:`safe_url`: only well-formed ``http``/``https`` URLs with a host and
  no whitespace, control or non-ASCII characters; anything else is not linked.
- :func:`plot` for matplotlib labels: ``$`` is escaped, so that no name is
  parsed as mathtext (a stray ``$…$`` would otherwise stop every build).
"""

from __future__ import annotations

import html as _html
import re
from urllib.parse import urlsplit

#: Bidirectional embeddings, overrides and isolates, and the three invisible direction marks.
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
_BIDI_RE = re.compile(f"[{BIDI}]")
_CONTROL_RE = re.compile("[\u0000-\u001f\u007f-\u009f\u2028\u2029]")
#: Characters that open a construct inside a table cell or heading of GitHub-flavoured Markdown
#: (emphasis, code, links, tables, strikethrough, math); '<', '>' and '&' become entities instead.
_MD_ACTIVE = re.compile(r"([\\`*_\[\]|~$])")
#: RFC 3986 characters, minus the quote and the backslash; no space, no control, no non-ASCII.
_URL_RE = re.compile(r"^https?://[A-Za-z0-9\-._~:/?#\[\]@!$&()*+,;=%]+$")
MAX_URL = 2000


def clean(text) -> str:
    """``text`` as a string, without bidi controls, other control characters replaced by spaces.

    Lone surrogates (JSON may spell them, ``"\\ud800"``) become ``?``: they
    cannot be written as UTF-8.
    """
    s = str(text)
    if not s.isascii():
        s = s.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL_RE.sub(" ", _BIDI_RE.sub("", s))


def html(text) -> str:
    """Cleaned and escaped for HTML text and attribute values (quotes included)."""
    return _html.escape(clean(text), quote=True)


def md(text) -> str:
    """Cleaned and escaped for a Markdown table cell or heading, safe when the Markdown allows HTML."""
    s = clean(text)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return _MD_ACTIVE.sub(r"\\\1", s)


def safe_url(url) -> str | None:
    """``url`` if it is a well-formed http(s) URL with a host, else None (never linked)."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not _URL_RE.match(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced '[' in the host
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return url


def md_url(url: str) -> str:
    """A :func:`safe_url` as a Markdown link destination: parentheses (which could end it) percent-encoded."""
    return url.replace("(", "%28").replace(")", "%29")


def plot(text) -> str:
    """Cleaned, with ``$`` escaped so that matplotlib shows it instead of parsing mathtext.

    A leading ``_`` gets a space before it: matplotlib leaves labels starting
    with ``_`` out of legends.
    """
    s = clean(text).replace("$", r"\$")
    return " " + s if s.startswith("_") else s


def slug(text) -> str:
    """A file- and id-safe form of a name (``[A-Za-z0-9._-]``, never empty)."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", clean(text)).strip("-.")
    return s[:80] or "x"


def unique_slugs(names) -> list[str]:
    """:func:`slug` of each name, with ``-2``, ``-3`` … appended where two names would collide."""
    out, used = [], set()
    for name in names:
        base = s = slug(name)
        n = 1
        while s.casefold() in used:  # case-insensitive file systems would merge 'A' and 'a'
            n += 1
            s = f"{base}-{n}"
        used.add(s.casefold())
        out.append(s)
    return out
