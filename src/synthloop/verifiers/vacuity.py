"""Is a test suite able to fail? Found by reading it (`ast`), before anything runs.

A suite that passes whatever the solution does proves nothing, and a record that carries it would
teach a student that such tests are tests. `vacuous_reason(solution, tests)` names the first defect:

- an assert that is always true: a constant (`assert True`, `assert 1`), a non-empty literal
  (`assert (x == y, "msg")` is a tuple, always truthy), a comparison of a thing with itself;
- a `test_*` function or method that checks nothing (no assert, no `self.assert*`, no
  `pytest.raises`/`assertRaises`, no `raise` under a condition);
- no check anywhere that touches a name the solution defines (directly, or through a variable
  computed from one, like `result = f(2); assert result == 4`).

It returns "" for a suite that can fail. Whether it fails on *wrong* code is the mutation run's
question (`verifiers/mutation.py`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

_ASSERT_METHODS = ("assert", "fail")  # unittest: assertEqual, assertTrue, assertRaises, ..., fail
_RAISES_HELPERS = {"raises", "assertRaises", "assertRaisesRegex", "warns", "assertWarns"}


def defined_names(solution: ast.Module) -> set[str]:
    """Top-level names the solution defines: functions, classes, assigned variables, imports."""
    names: set[str] = set()
    for stmt in solution.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def always_true(test: ast.expr) -> bool:
    """A test expression whose truth does not depend on anything that runs."""
    if isinstance(test, ast.Constant):
        return bool(test.value)
    if isinstance(test, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
        return bool(test.keys if isinstance(test, ast.Dict) else test.elts)
    if isinstance(test, (ast.Lambda, ast.JoinedStr)) and not (isinstance(test, ast.JoinedStr) and not test.values):
        return True
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], (ast.Eq, ast.Is, ast.LtE, ast.GtE)):
        return ast.dump(test.left) == ast.dump(test.comparators[0]) and not _calls(test.left)
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or):
        return any(always_true(v) for v in test.values)
    return False


def _calls(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Call) for n in ast.walk(node))


class _Checks(ast.NodeVisitor):
    """Collects the check expressions in a block (not descending into nested defs/classes)."""

    def __init__(self) -> None:
        self.checks: list[tuple[ast.AST, ast.AST]] = []  # (node for line numbers, what it checks)

    def visit_Assert(self, node: ast.Assert) -> None:
        self.checks.append((node, node.test))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr.startswith(_ASSERT_METHODS) and func.attr not in _RAISES_HELPERS:
            self.checks.append((node, node))
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and _callee(call) in _RAISES_HELPERS:
                self.checks.append((node, ast.Module(body=node.body, type_ignores=[])))
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        if any(isinstance(s, ast.Raise) for s in ast.walk(node)):
            self.checks.append((node, node.test))
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:  # nested helpers are not checks
        return

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        return


def _callee(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def checks_in(body: Iterable[ast.stmt]) -> list[tuple[ast.AST, ast.AST]]:
    visitor = _Checks()
    for stmt in body:
        visitor.visit(stmt)
    return visitor.checks


def tainted(body: Iterable[ast.stmt], sources: set[str]) -> set[str]:
    """`sources` plus every name assigned (anywhere in `body`) from an expression that uses one."""
    names = set(sources)
    assigns = [n for stmt in body for n in ast.walk(stmt) if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With, ast.NamedExpr))]
    changed = True
    while changed:
        changed = False
        for node in assigns:
            value, targets = _flow(node)
            if value is not None and _names(value) & names:
                new = {n for t in targets for n in _names(t)} - names
                if new:
                    names |= new
                    changed = True
    return names


def _flow(node: ast.AST) -> tuple[ast.AST | None, list[ast.AST]]:
    if isinstance(node, ast.Assign):
        return node.value, list(node.targets)
    if isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
        return node.value, [node.target]
    if isinstance(node, ast.For):
        return node.iter, [node.target]
    if isinstance(node, ast.With):
        return ast.Tuple(elts=[i.context_expr for i in node.items]), [i.optional_vars for i in node.items if i.optional_vars]
    return None, []


def test_units(tests: ast.Module) -> Iterator[tuple[str, list[ast.stmt]]]:
    """(name, body) of each test function and test method."""
    for stmt in tests.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name.startswith("test"):
            yield stmt.name, stmt.body
        elif isinstance(stmt, ast.ClassDef) and stmt.name.startswith("Test"):
            setup = [s for i in stmt.body if isinstance(i, ast.FunctionDef) and i.name in ("setUp", "setup_method") for s in i.body]
            for item in stmt.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    yield f"{stmt.name}.{item.name}", setup + item.body


def vacuous_reason(solution: ast.Module, tests: ast.Module) -> str:
    """The first reason this suite cannot fail, or "" when it can. See the module docstring."""
    provided = defined_names(solution) | {"solution"}
    module_level = [s for s in tests.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    helpers = {s.name for s in tests.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and not s.name.startswith("test")}
    module_names = tainted(module_level, provided)
    helpers_using = {s.name for s in tests.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and s.name in helpers and _names(s) & module_names}
    module_names |= helpers_using
    units = [("module level", module_level, module_names)]
    units += [(name, body, tainted(body, module_names)) for name, body in test_units(tests)]
    touching = 0
    for name, body, names in units:
        checks = checks_in(body)
        for node, expr in checks:
            if isinstance(expr, ast.expr) and always_true(expr):
                return f"vacuous_tests: line {getattr(node, 'lineno', 0)}: `assert {ast.unparse(expr)[:60]}` is always true"
        if not checks and name != "module level":
            return f"vacuous_tests: {name} checks nothing (no assert)"
        touching += sum(1 for _, expr in checks if _names(expr) & names or _uses_self_state(expr, body, names))
    if touching == 0:
        return "vacuous_tests: no assertion uses anything the solution defines"
    return ""


def _uses_self_state(expr: ast.AST, body: list[ast.stmt], names: set[str]) -> bool:
    """`self.x = f(...)` in setUp, then `self.assertEqual(self.x, ...)`: the check uses the solution."""
    attrs = {n.attr for n in ast.walk(expr) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "self"}
    if not attrs:
        return False
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Assign) and _names(node.value) & names:
                if any(isinstance(t, ast.Attribute) and t.attr in attrs for t in node.targets):
                    return True
    return False


__all__ = ["always_true", "defined_names", "vacuous_reason"]
