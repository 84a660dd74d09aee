"""The HTML reports render math offline: MathJax is copied beside them from the jupyter-server-mathjax package and
referenced by a relative URL, never a CDN (README "Reading the reports")."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat

from sparsity_lab.report.notebook_run import MATHJAX_DIR, install_mathjax, render_html


def test_rendered_html_loads_the_local_mathjax_and_it_is_there(tmp_path: Path) -> None:
    executed = tmp_path / "profile" / "01_math.ipynb"
    executed.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(r"mask $m_{t+1}$ and $$\frac{\lVert w\rVert_1}{\lVert w\rVert_2}$$")]
    nbformat.write(nb, executed)
    html = render_html(executed, "banner").read_text()
    scripts = re.findall(r'<script[^>]*src="([^"]*)"', html)
    mathjax = [s for s in scripts if "mathjax" in s.lower()]
    assert mathjax == [f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,local/sparsity_lab"], scripts
    local = executed.parent / MATHJAX_DIR
    assert (local / "MathJax.js").is_file() and (local / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert (local / "config" / "local" / "sparsity_lab.js").is_file()
    assert any((local / "fonts" / "HTML-CSS" / "STIX-Web" / "woff").glob("*.woff")), "the web fonts MathJax uses"
    assert not re.search(r"https?://[^\"'\s]*mathjax", html, re.I), "no MathJax from the network"
    assert r"m_{t+1}" in html, "the TeX is left for MathJax"


def test_install_copies_once_and_repairs_a_partial_copy(tmp_path: Path) -> None:
    url = install_mathjax(tmp_path)
    main = tmp_path / MATHJAX_DIR / "MathJax.js"
    stamp = main.stat().st_mtime_ns
    assert install_mathjax(tmp_path) == url and main.stat().st_mtime_ns == stamp, "installed once"
    shutil.rmtree(tmp_path / MATHJAX_DIR / "config" / "local")
    install_mathjax(tmp_path)
    assert (tmp_path / MATHJAX_DIR / "config" / "local" / "sparsity_lab.js").is_file()
    assert not list(tmp_path.glob("_static/.mathjax-*")), "no temporary copy left behind"


def test_mathjax_is_linked_where_possible_and_copied_where_links_fail(tmp_path, monkeypatch) -> None:
    """Hard links (milliseconds) on the installed package's file system; a copy where ``os.link`` fails
    (another file system): the same files either way."""
    import os

    from sparsity_lab.report.notebook_run import MATHJAX_DIR, install_mathjax

    install_mathjax(tmp_path / "linked")
    linked = sorted(p.relative_to(tmp_path / "linked") for p in (tmp_path / "linked").rglob("*") if p.is_file())

    def cross_device(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    install_mathjax(tmp_path / "copied")
    copied = sorted(p.relative_to(tmp_path / "copied") for p in (tmp_path / "copied").rglob("*") if p.is_file())
    assert linked == copied and len(copied) > 500
    main_js = f"{MATHJAX_DIR}/MathJax.js"
    assert os.stat(tmp_path / "copied" / main_js).st_nlink == 1
    assert (tmp_path / "copied" / main_js).read_bytes() == (tmp_path / "linked" / main_js).read_bytes()
