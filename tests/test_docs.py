"""The documentation site builds, and its pages load with their images and links.

Slow (the build runs every example in its quick mode): marked ``slow``, and
skipped when sphinx is not installed (``pip install ".[docs]"``). Set
``SKAE_DOCS_HTML`` to an existing build (as ``.ci/run`` does after its own
build) to check that instead of building again.
"""

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("numpydoc")
pytest.importorskip("pydata_sphinx_theme")

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


class _Links(HTMLParser):
    """The ids a page defines and the links and images it uses."""

    def __init__(self):
        super().__init__()
        self.ids, self.links, self.images = set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag == "img" and attrs.get("src"):
            self.images.append(attrs["src"])


def _parse(page):
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def html():
    if os.environ.get("SKAE_DOCS_HTML"):
        return Path(os.environ["SKAE_DOCS_HTML"])
    out = ROOT / "docs" / "_build" / "test-html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-b", "html"]
    subprocess.run([*command, str(ROOT / "docs"), str(out)], check=True, timeout=1800)
    return out


def _internal(url):
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc and not url.startswith(("mailto:", "data:"))


def _target(page, url):
    path = unquote(urlsplit(url).path)
    return (page.parent / path).resolve() if path else page


def test_every_public_name_has_a_page(html):
    import skae
    import skae.exceptions
    import skae.onnx
    import skae.plotting

    for module in (skae, skae.exceptions, skae.onnx, skae.plotting):
        for name in module.__all__:
            if not name.startswith("_"):
                assert (html / "generated" / f"{module.__name__}.{name}.html").is_file(), name


@pytest.mark.parametrize(
    "page",
    ["index.html", "api.html", "user_guide/pca_start.html", "benchmarks.html"],
)
def test_key_pages_exist(html, page):
    assert (html / page).stat().st_size > 5_000


def test_gallery_pages_show_their_figures(html):
    pages = sorted((html / "auto_examples").glob("*.html"))
    examples = sorted((ROOT / "examples").glob("*.py"))
    assert len(pages) >= len(examples)  # every example, plus the index
    figures = [img for page in pages for img in _parse(page).images if "sphx_glr_" in img]
    assert any("compare_pca_digits" in img for img in figures), figures


def test_no_broken_internal_links_or_images(html):
    broken = []
    pages = sorted(html.rglob("*.html"))
    ids = {}
    for page in pages:
        parsed = _parse(page)
        ids[page.resolve()] = parsed.ids
        for src in parsed.images:
            if _internal(src):
                target = _target(page, src)
                if not target.is_file() or target.stat().st_size == 0:
                    broken.append(f"{page.relative_to(html)}: image {src}")
    for page in pages:
        for href in _parse(page).links:
            if not _internal(href):
                continue
            target, fragment = _target(page, href), urlsplit(href).fragment
            if not target.exists():
                broken.append(f"{page.relative_to(html)}: link {href}")
            elif fragment and target.suffix == ".html" and target in ids:
                if unquote(fragment) not in ids[target]:
                    broken.append(f"{page.relative_to(html)}: anchor {href}")
    assert not broken, "\n".join(broken[:50])
