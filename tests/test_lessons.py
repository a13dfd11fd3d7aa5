"""Every topic notebook is a lesson: goals, preflight, data card, summary and exercises; no visible cell leans on a
hidden import; exported cells stay short; stored outputs are clean."""
import ast
import builtins
import json
import re
import symtable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOPICS = sorted(p for p in (ROOT / "nbs").glob("[1-8][0-9]_*.ipynb"))
ALL = sorted((ROOT / "nbs").glob("*.ipynb"))
DIRECTIVE = re.compile(r"^\s*#\|\s*([\w-]+)")


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def directives(cell: dict) -> set[str]:
    found = set()
    for line in source(cell).splitlines():
        match = DIRECTIVE.match(line)
        if not match: break
        found.add(match.group(1))
    return found


def names(code: str) -> tuple[set[str], set[str]]:
    "(names the cell binds at top level, global names it reads anywhere), by Python's own symbol tables."
    code = "\n".join(l for l in code.splitlines() if not l.lstrip().startswith(("%", "!")))
    top = symtable.symtable(code, "<cell>", "exec")
    bound, read = set(), set()
    for symbol in top.get_symbols():
        if symbol.is_assigned() or symbol.is_imported(): bound.add(symbol.get_name())
        if symbol.is_referenced(): read.add(symbol.get_name())
    def walk(table):
        for child in table.get_children():
            for symbol in child.get_symbols():
                if symbol.is_referenced() and symbol.is_global(): read.add(symbol.get_name())
            walk(child)
    walk(top)
    return bound, read


def hidden_dependencies(path: Path) -> list[str]:
    "Names a visible cell reads that only a hidden cell above it has bound."
    visible, hidden, problems = set(dir(builtins)), set(), []
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] != "code": continue
        bound, read = names(source(cell))
        if "hide" in directives(cell):
            hidden |= bound
            continue
        missing = sorted((read - bound - visible) & hidden)
        problems += [f"{path.name} cell {i} uses {name!r}, bound only in a hidden cell" for name in missing]
        visible |= bound
    return problems


def test_the_checker_finds_a_hidden_import(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "#| hide\nimport time\nfrom x import helper"},
                    {"cell_type": "code", "source": "def f(n):\n    return time.time() + n\nhelper(f(1))"},
                    {"cell_type": "code", "source": "import time\ntime.time()"}]}
    path = tmp_path / "toy.ipynb"; path.write_text(json.dumps(nb))
    assert hidden_dependencies(path) == ["toy.ipynb cell 1 uses 'helper', bound only in a hidden cell",
                                         "toy.ipynb cell 1 uses 'time', bound only in a hidden cell"]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_no_visible_cell_needs_a_hidden_import(path):
    assert hidden_dependencies(path) == []


def mixed_import_cells(path: Path) -> list[int]:
    "Code cells, not exported, that import and also do something else: nbdev's docs step runs every cell that imports."
    found = []
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] != "code" or directives(cell) & {"export", "exporti", "exports"}: continue
        code = "\n".join(l for l in source(cell).splitlines() if not l.lstrip().startswith(("%", "!")))
        try: tree = ast.parse(code)
        except SyntaxError: continue
        imports = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
        if imports and any(not isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body): found.append(i)
    return found


def test_the_checker_finds_a_mixed_import_cell(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "import numpy as np\nfrom x import y"},
                    {"cell_type": "code", "source": "#| export\nimport os\nA = 1"},
                    {"cell_type": "code", "source": "from x import y\nz = y(1)"}]}
    path = tmp_path / "toy.ipynb"; path.write_text(json.dumps(nb))
    assert mixed_import_cells(path) == [2]


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_imports_stand_in_cells_of_their_own(path):
    "A cell that imports and computes would run again, out of order, when the docs are built (nbdev's exec_show_docs)."
    assert mixed_import_cells(path) == [], "move these cells' imports into an import-only cell above them"


@pytest.mark.parametrize("path", TOPICS, ids=lambda p: p.stem)
def test_topic_notebook_is_a_lesson(path):
    text = "\n".join(source(c) for c in cells(path))
    markdown = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "markdown")
    assert "**What you will learn**" in markdown, "goals at the top"
    assert "the review's part on" in markdown, "the review section it follows"
    assert f'preflight("{path.stem}")' in text, "a preflight cell"
    assert "data_card(" in text, "a data card with sources, licences and citations"
    assert "## Summary" in markdown and "## Exercises" in markdown
    exercises = markdown.split("## Exercises", 1)[1]
    assert len(re.findall(r"^\d\. ", exercises, re.M)) >= 2, "two or three exercises"
    assert "../bench/results" not in text, "benchmark results are read with bench_result, from any folder"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_exported_cells_stay_short(path):
    long = [(i, source(c).count("\n") + 1) for i, c in enumerate(cells(path))
            if c["cell_type"] == "code" and "export" in directives(c) and source(c).count("\n") + 1 > 60]
    assert long == [], f"split these exported cells (cell, lines): {long}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_stored_outputs_are_clean(path):
    for i, cell in enumerate(cells(path)):
        outputs = cell.get("outputs", [])
        if "hide" in directives(cell): assert outputs == [], f"cell {i}: a hidden cell stores output"
        for output in outputs:
            text = output.get("text", "")
            text = text if isinstance(text, str) else "".join(text)
            html = output.get("data", {}).get("text/html", "")
            html = html if isinstance(html, str) else "".join(html)
            if output.get("output_type") == "stream":
                assert text.strip(), f"cell {i}: a blank stream (a vanished progress bar)"
                assert "train_loss  valid_loss" not in text, f"cell {i}: a text-mode training table (run matdl-docs execute)"
            assert "<progress" not in html, f"cell {i}: a progress bar stored as output"
