"""The package's floor plan: each wing imports only the wings below it (README "Architecture").

The order is declared once, here; an import that runs back up (a lower wing importing a higher one,
at module level or inside a function) fails this test with the file, the line and the two wings."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sparsity_lab"

#: Top to bottom. A wing may import itself and any wing after it in this list.
FLOORS = ("__main__", "cli", "report", "sweep", "experiments", "figures", "store", "config", "claims", "rules",
          "models", "engine", "data", "measures", "masks", "errors", "_roots", "_format", "__init__")


def _wing(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_wings(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + ([f"{node.module}.{a.name}" for a in node.names] if node.module == "sparsity_lab"
                                     else [])
        for name in names:
            parts = name.split(".")
            if parts[0] == "sparsity_lab" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def test_every_module_sits_in_a_declared_wing():
    wings = {_wing(p) for p in PACKAGE.rglob("*.py")}
    assert wings <= set(FLOORS), f"undeclared wings {sorted(wings - set(FLOORS))}: add them to FLOORS"


def test_no_import_runs_back_up_the_floors():
    rank = {w: i for i, w in enumerate(FLOORS)}
    back = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _wing(path)
        for line, wing in _imported_wings(path):
            if wing in rank and rank[wing] < rank[here]:
                back.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {here} imports {wing}, which sits above it")
    assert not back, "\n".join(back)


def test_modules_stay_small():
    big = {str(p.relative_to(PACKAGE.parent)): n for p in PACKAGE.rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 300}
    assert not big, f"modules over 300 lines: {big}"
