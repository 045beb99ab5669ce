"""The page in a real browser: headless Chromium renders the tables and images, sorts on ``#sort=``,
and every metric column of every table fits a 1400-pixel-wide window.

Chromium is a test requirement (``.ci/run`` installs Debian's ``chromium``);
without it this test fails, it does not skip. The screenshot is kept as an
artefact under ``artifacts/leaderboard.png`` in the repository root.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import ARTIFACTS

REPO = Path(__file__).resolve().parents[2]
ARTIFACT = REPO / "artifacts" / "leaderboard.png"


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if exe is None:
        pytest.fail("headless Chromium is needed for the leaderboard's browser test and was not found: "
                    "install it (Debian: apt-get install chromium; .ci/run does this)", pytrace=False)
    return exe


def _run(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"chromium failed ({r.returncode}): {r.stderr[-2000:]}"
    return r


class _Dom(HTMLParser):
    """Collects the body attributes, the images and each table's row keys in document order."""

    def __init__(self):
        super().__init__()
        self.body: dict = {}
        self.imgs: list[dict] = []
        self.tables: dict[str, dict] = {}
        self._table = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "body":
            self.body = a
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = {"attrs": a, "rows": []}
        elif tag == "tr" and self._table and "data-key" in a:
            self.tables[self._table]["rows"].append(a["data-key"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._table = None


def _dump(page: Path, fragment: str, profile: Path, width: int = 1400) -> _Dom:
    r = _run([f"--window-size={width},2200", "--virtual-time-budget=10000", "--dump-dom", page.as_uri() + fragment],
             profile)
    dom = _Dom()
    dom.feed(r.stdout)
    return dom


EXACT = "t-coco-ad-demo-exact-0-1-2-3"


def test_page_renders_and_sorts_in_chromium(built_board, tmp_path):
    _, out, _ = built_board
    page = out / "index.html"
    n_imgs = len(re.findall(r"<img ", page.read_text()))
    assert n_imgs > 0

    dom = _dump(page, "#sort=I-AUROC", tmp_path / "profile")
    # every image decoded (the page marks them on load), every table present with its rows
    assert dom.body.get("data-images") == f"{n_imgs}/{n_imgs}", dom.body
    assert all(img.get("data-ok") == "1" for img in dom.imgs)
    assert dom.imgs and len(dom.imgs) == n_imgs
    scored = dom.tables[EXACT]
    assert scored["attrs"].get("data-sorted") == "I-AUROC:desc"
    # I-AUROC means of the complete exact group: Beta 73.0, Gamma 68.0, InvAD-tiny 65.0, Alpha 63.0
    assert scored["rows"] == ["beta.exact.json", "gamma.exact.json", "tiny.exact.json", "alpha.exact.json"]
    reported = dom.tables["t-coco-ad-invad-paper"]["rows"]
    assert reported[:2] == ["reported/invad-paper/coco-ad/InvAD", "reported/invad-paper/coco-ad/InvAD-lite"]
    assert reported[-1] == "reported/invad-paper/coco-ad/DRAEM"
    assert len(dom.tables["t-visa-invad-paper"]["rows"]) == 8
    assert len(dom.tables["t-visa-ader-benchmark-100e"]["rows"]) == 15
    assert dom.tables["t-coco-ad-demo-split-0"]["rows"][0] == "beta.exact.json#0"

    dom = _dump(page, "#sort=mIoU-max", tmp_path / "profile")
    assert dom.tables[EXACT]["rows"] == ["gamma.exact.json", "tiny.exact.json", "alpha.exact.json", "beta.exact.json"]
    dom = _dump(page, "#sort=Method:desc", tmp_path / "profile")
    assert dom.tables[EXACT]["rows"][0] == "tiny.exact.json"
    dom = _dump(page, "#sort=Rank", tmp_path / "profile")  # ranks sort best first by default
    assert dom.tables[EXACT]["rows"][0] == "gamma.exact.json"
    # without a fragment the build order stays: by rank (mAD)
    dom = _dump(page, "", tmp_path / "profile")
    assert dom.tables[EXACT]["rows"] == ["gamma.exact.json", "beta.exact.json", "tiny.exact.json", "alpha.exact.json"]
    # at 1400 px every table, all its metric columns included, fits: none scrolls sideways
    over, widest, inner = (int(x) for x in dom.body["data-overflow"].split(":"))
    assert inner == 1400 and over == 0 and widest <= inner, dom.body["data-overflow"]
    # narrower, the tables scroll sideways inside their box (the method column stays in view) instead of the page
    narrow = _dump(page, "", tmp_path / "profile", width=900)
    assert int(narrow.body["data-overflow"].split(":")[0]) > 0

    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    _run(["--window-size=1400,2200", "--hide-scrollbars", f"--screenshot={ARTIFACT}",
          page.as_uri() + "#sort=I-AUROC"], tmp_path / "profile")
    print(f"\nleaderboard screenshot: {ARTIFACT}")
    ARTIFACTS.append(ARTIFACT)
    img = np.asarray(Image.open(ARTIFACT).convert("L"), dtype=np.float64)
    assert img.shape == (2200, 1400)
    assert img.std() > 10  # not a blank page
    # the last metric columns are drawn inside the window: text (dark pixels) in its right part
    assert (img[:, 1000:1380] < 100).sum() > 500
