"""Every formula of the figure notebooks' markdown is inside ``$…$`` / ``$$…$$``, so MathJax renders it in
Jupyter and in the HTML reports (docs/figures.md "Notebooks"); TeX outside the delimiters shows literally."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))

_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
_DISPLAY = re.compile(r"\$\$.+?\$\$", re.S)
_INLINE = re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$")
#: TeX markup that only MathJax renders: a braced sub/superscript, a control word (``\frac``, ``\lVert``),
#: a caret power (``0.8^t``) or a subscripted letter (``m_t``, ``η_r``).
_TEX = re.compile(r"_\{|\^\{|\\[A-Za-z]+|[\w)\]]\^|(?<!\w)[^\W\d_]_[^\W_]")


def tex_outside_math(markdown: str) -> list[str]:
    """The pieces of TeX in ``markdown`` outside code spans and math delimiters, and a stray ``$``."""
    text = _INLINE.sub(" ", _DISPLAY.sub(" ", _CODE.sub(" ", markdown)))
    found = [m.group(0) for m in _TEX.finditer(text)]
    return found + (["unbalanced $"] if re.search(r"(?<!\\)\$", text) else [])


def test_checker_finds_tex_outside_delimiters():
    assert tex_outside_math(r"mask m_{t+1} and I_{0.5,1}") == ["_{", "_{"]
    assert tex_outside_math(r"keeps (0.8)^t, η_r scales, \lVert w\rVert") == [")^", "η_r", r"\lVert", r"\rVert"]
    assert tex_outside_math("a $x$ and $y") == ["unbalanced $"]
    clean = r"mask $m_{t+1}$, $$\frac{a}{b}$$, `train_subset`, ```x_{1}```, train_subset, I₀.₅,₁, θ₀"
    assert tex_outside_math(clean) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_markdown_has_no_tex_outside_math(path: Path):
    nb = nbformat.read(path, as_version=4)
    bad = {i: tex_outside_math(c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"}
    assert not {i: b for i, b in bad.items() if b}, f"{path.name}: TeX outside $…$ in markdown cells {bad}"
