"""The package's shape: no import circles, and no module-level import from a lower layer to a
higher one. Imports inside functions are deferred plugin look-ups (the recipe asking which tasks
exist, the fake backend collecting canned answers) and are allowed; `if TYPE_CHECKING:` blocks are
for type checkers only."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parent.parent / "src"
PKG = SRC / "synthloop"

#: Lowest first. A module may import modules of its own layer or lower ones.
LAYERS: list[tuple[str, list[str]]] = [
    ("base", ["synthloop.errors", "synthloop.records", "synthloop.lazy", "synthloop.recipe", "*.config"]),
    ("core", ["synthloop.storage", "synthloop.pipeline.context", "synthloop.pipeline.stage", "synthloop.pipeline",
              "synthloop.backends", "synthloop.testing"]),
    ("domain", ["synthloop.tasks", "synthloop.grounding", "synthloop.collapse", "synthloop.curation",
                "synthloop.verifiers", "synthloop.student", "synthloop.seeds"]),
    ("pipeline", ["synthloop.pipeline.plan", "synthloop.pipeline.generate", "synthloop.pipeline.build",
                  "synthloop.pipeline.filters", "synthloop.verifiers.stages", "synthloop.engines"]),
    ("run", ["synthloop.reports", "synthloop.rounds", "synthloop.review", "synthloop.classroom", "synthloop.audit"]),
    ("entry", ["synthloop.cli", "synthloop"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> int:
    """The layer of the most specific pattern that matches `module` (a module no pattern names is
    an error: every new package must be placed in a layer)."""
    best, rank = -1, 0
    for i, (_, patterns) in enumerate(LAYERS):
        for p in patterns:
            if p.startswith("*.") and module.endswith(p[1:]):
                return 0
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    assert best >= 0, f"{module} is in no layer: add it to LAYERS"
    return rank


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else []:
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("synthloop") and sub.level == 0:
                out.add(sub.module)
                out.update(f"{sub.module}.{a.name}" for a in sub.names if (PKG.parent / f"{sub.module}.{a.name}".replace(".", "/")).with_suffix(".py").exists())
            elif isinstance(sub, ast.Import):
                out.update(a.name for a in sub.names if a.name.startswith("synthloop"))
    return out


def graph() -> dict[str, set[str]]:
    return {module_name(p): top_level_imports(p) for p in PKG.rglob("*.py")}


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    bad = []
    for mod, imports in graph().items():
        for imp in imports:
            if layer(imp) > layer(mod) and not mod.startswith(imp + ".") and imp != "synthloop":
                bad.append(f"{mod} ({LAYERS[layer(mod)][0]}) imports {imp} ({LAYERS[layer(imp)][0]})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_circles() -> None:
    g = graph()
    known = set(g)

    def deps(m: str) -> set[str]:
        return {d for d in g.get(m, set()) if d in known and d != m and not m.startswith(d + ".")}

    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in deps(m):
            if state.get(d) == 1:
                cycles.append(stack[stack.index(d):] + [d] if d in stack else [m, d])
            elif d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in sorted(known):
        if m not in state:
            visit(m, [m])
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_engines_stay_small() -> None:
    """An engine decides where stages run: no function over 40 lines, local.py well under 200."""
    for path in (PKG / "engines").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                assert n <= 40, f"{path.name}:{node.name} is {n} lines"
    assert len((PKG / "engines" / "local.py").read_text().splitlines()) < 120
