"""The subpackages form layers that only point down (docs/architecture.md).

The layer table is read from docs/architecture.md, so the document and this check cannot
drift apart. Module-level and function-level imports both count.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "llmops"
DOC = REPO / "docs" / "architecture.md"
TABLE_MODULES = ("tables",)  # private to their own subpackage
# Shipped data, not package code: the metric scripts under resources/eval/metrics are loaded
# by `evaluate.load(path)` like a user's own metric, and may use the harness's base classes.
DATA_DIRS = ("resources/eval", "resources/recipes", "resources/feedback")


def layer_table(doc: Path = DOC) -> dict[str, int]:
    """{subpackage: layer} from the Markdown table after the `layering-table` marker."""
    text = doc.read_text(encoding="utf-8")
    table = text[text.index("layering-table"):]
    layers: dict[str, int] = {}
    for line in table.splitlines()[1:]:
        if line.strip() and not line.lstrip().startswith("|"):
            break
        m = re.match(r"\|\s*(\d+)\s*\|([^|]*)\|", line)
        if m:
            for name in re.findall(r"`([\w]+)`", m[2]):
                layers[name] = int(m[1])
    return layers


@dataclass(frozen=True)
class Violation:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def _imported_modules(node: ast.AST, module_parts: list[str], is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level == 0:
            base = node.module or ""
            return [f"{base}.{a.name}" for a in node.names] if base else []
        package = module_parts if is_package else module_parts[:-1]
        anchor = package[: len(package) - (node.level - 1)]
        base = ".".join(anchor + ([node.module] if node.module else []))
        return [f"{base}.{a.name}" for a in node.names]
    return []


def check_layering(package_dir: Path, layers: dict[str, int]) -> list[Violation]:
    """Every import of one `llmops` subpackage by another that breaks the layering."""
    root = package_dir.name
    found: list[Violation] = []
    unplaced: set[str] = set()
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent)
        if any(path.relative_to(package_dir).as_posix().startswith(d + "/") for d in DATA_DIRS):
            continue
        parts = list(rel.with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        if len(parts) < 2:  # llmops/__init__.py
            continue
        own = parts[1]
        where = f"{rel}"
        if own not in layers:
            if own not in unplaced:
                unplaced.add(own)
                found.append(Violation(where, f"subpackage `{own}` is not in the layer table of docs/architecture.md"))
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            for target in _imported_modules(node, parts, is_package):
                tparts = target.split(".")
                if tparts[0] != root or len(tparts) < 2 or tparts[1] == own:
                    continue
                other = tparts[1]
                loc = f"{where}:{node.lineno}"
                if other not in layers:
                    if (package_dir / other).is_dir() or (package_dir / f"{other}.py").exists():
                        found.append(Violation(loc, f"imports `{other}`, which is not in the layer table"))
                    continue
                if len(tparts) > 2 and tparts[2] in TABLE_MODULES:
                    found.append(Violation(loc, f"`{own}` imports `{root}.{other}.{tparts[2]}`: tables are private "
                                                f"to `{other}`; use its public query functions"))
                elif layers[other] >= layers[own]:
                    kind = "a peer in the same layer" if layers[other] == layers[own] else "a higher layer"
                    found.append(Violation(loc, f"`{own}` (layer {layers[own]}) imports `{target}` — `{other}` is "
                                                f"{kind} (layer {layers[other]})"))
    return found


def test_layer_table_names_every_subpackage():
    layers = layer_table()
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert subpackages | modules <= set(layers), f"missing from docs/architecture.md: {sorted(subpackages | modules - set(layers))}"


def test_imports_only_point_down():
    violations = check_layering(PACKAGE, layer_table())
    assert not violations, "layering broken (docs/architecture.md):\n" + "\n".join(map(str, violations))


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("models/refs.py", "def f():\n    from llmops.registry.api import get_store\n", "higher layer"),
        ("registry/gates.py", "from ..eval import api\n", "higher layer"),
        ("feedback/store.py", "import llmops.registry.store\n", "peer in the same layer"),
        ("loop/steps.py", "from llmops.feedback.tables import Item\n", "tables are private"),
        ("shiny/thing.py", "x = 1\n", "not in the layer table"),
    ],
)
def test_a_planted_violation_is_reported_with_file_and_line(tmp_path, module, source, expected):
    pkg = tmp_path / "llmops"
    for sub in ("models", "registry", "eval", "feedback", "loop"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / module).parent.mkdir(exist_ok=True)
    (pkg / module).write_text(source)
    violations = check_layering(pkg, layer_table())
    assert len(violations) == 1, violations
    assert expected in violations[0].message
    assert violations[0].where.startswith(f"llmops/{module}")
    if expected != "not in the layer table":
        assert violations[0].where == f"llmops/{module}:{source.count(chr(10), 0, source.index('import'))+1}"


def test_downward_and_own_package_imports_pass(tmp_path):
    pkg = tmp_path / "llmops"
    for sub in ("eval", "models"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "eval" / "runner.py").write_text("from llmops.models.refs import resolve\nfrom . import runner\nfrom .x import y\n")
    assert check_layering(pkg, layer_table()) == []
