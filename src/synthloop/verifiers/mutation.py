"""Small, deliberate bugs in a reference solution (mutants), to ask whether its tests notice.

A suite that passes on the solution and also on `a < b` turned into `a <= b` does not pin the
behaviour down. `mutants(source, limit)` makes at most `limit` compiled variants, one change each,
drawn round-robin from these kinds (so a few mutants still cover different kinds of bug):

- `operator`: `+`<->`-`, `*`<->`//`, `/`->`*`, `%`->`//`, `and`<->`or`, augmented assignments too;
- `comparison`: `<`<->`<=`, `>`<->`>=`, `==`<->`!=`, `in`<->`not in`, `is`<->`is not`;
- `constant`: an int `n` -> `n + 1` (off-by-one), `True`<->`False`, a non-empty string -> `""`;
- `off_by_one`: `range(a, b)` -> `range(a, b + 1)`, `x[i]` -> `x[i + 1]`;
- `return`: `return expr` -> `return None`; `not x` -> `x`.

Only code inside functions and methods is mutated (docstrings never): a mutant of module-level
setup is seldom a bug the tests are about. Deterministic: the same source gives the same mutants.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.FloorDiv, ast.FloorDiv: ast.Mult,
    ast.Div: ast.Mult, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
}
_CMP_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}
KINDS = ("comparison", "operator", "return", "constant", "off_by_one")


@dataclass(frozen=True)
class Mutant:
    kind: str
    line: int
    change: str  # e.g. "`<` -> `<=`"
    source: str

    def describe(self) -> str:
        return f"line {self.line}: {self.change}"


@dataclass(frozen=True)
class _Site:
    kind: str
    path: tuple[int, ...]  # index of the node in a deterministic walk of the function bodies
    change: str
    apply: Callable[[ast.AST], ast.AST | None]  # returns the replacement node (None: in place)


def _inside_functions(tree: ast.Module) -> Iterator[ast.AST]:
    """Every node inside a function or method body, skipping docstrings."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if _is_docstring(node.body[0]) else node.body
            for stmt in body:
                yield from ast.walk(stmt)


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _sites_of(node: ast.AST) -> Iterator[tuple[str, str, Callable[[ast.AST], ast.AST | None]]]:
    """(kind, change, how) for each mutation this node allows."""
    if isinstance(node, (ast.BinOp, ast.AugAssign)) and type(node.op) in _BINOP_SWAP:
        new = _BINOP_SWAP[type(node.op)]
        yield "operator", f"`{_op(node.op)}` -> `{_op(new())}`", lambda n, new=new: _set(n, "op", new())  # type: ignore[misc]
    elif isinstance(node, ast.BoolOp):
        new_bool = ast.Or if isinstance(node.op, ast.And) else ast.And
        yield "operator", f"`{_op(node.op)}` -> `{_op(new_bool())}`", lambda n, new=new_bool: _set(n, "op", new())  # type: ignore[misc]
    elif isinstance(node, ast.Compare) and type(node.ops[0]) in _CMP_SWAP:
        new_cmp = _CMP_SWAP[type(node.ops[0])]
        yield "comparison", f"`{_op(node.ops[0])}` -> `{_op(new_cmp())}`", lambda n, new=new_cmp: _set(n, "ops", [new(), *n.ops[1:]])  # type: ignore[misc]
    elif isinstance(node, ast.Constant) and not isinstance(node.value, (bytes, type(None), type(...))):
        yield from _constant_sites(node)
    elif isinstance(node, ast.Return) and node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
        yield "return", f"`return {ast.unparse(node.value)[:30]}` -> `return None`", lambda n: _set(n, "value", ast.Constant(None))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "operator", f"`not {ast.unparse(node.operand)[:30]}` -> `{ast.unparse(node.operand)[:30]}`", lambda n: n.operand  # type: ignore[attr-defined]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range" and node.args:
        yield "off_by_one", "`range(..., b)` -> `range(..., b + 1)`", _range_plus_one
    elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and not isinstance(node.slice, (ast.Slice, ast.Tuple, ast.Constant)):
        yield "off_by_one", f"`[{ast.unparse(node.slice)[:20]}]` -> `[{ast.unparse(node.slice)[:20]} + 1]`", _index_plus_one


def _constant_sites(node: ast.Constant) -> Iterator[tuple[str, str, Callable[[ast.AST], ast.AST | None]]]:
    value = node.value
    if isinstance(value, bool):
        yield "constant", f"`{value}` -> `{not value}`", lambda n: ast.Constant(not value)
    elif isinstance(value, int):
        yield "constant", f"`{value}` -> `{value + 1}`", lambda n: ast.Constant(value + 1)
    elif isinstance(value, float):
        yield "constant", f"`{value}` -> `{value + 1}`", lambda n: ast.Constant(value + 1.0)
    elif isinstance(value, str) and value:
        yield "constant", f"`{value[:20]!r}` -> `''`", lambda n: ast.Constant("")


def _set(node: ast.AST, attr: str, value: object) -> None:
    setattr(node, attr, value)
    return None


def _range_plus_one(node: ast.AST) -> None:
    assert isinstance(node, ast.Call)
    i = 0 if len(node.args) == 1 else 1
    node.args[i] = ast.BinOp(node.args[i], ast.Add(), ast.Constant(1))


def _index_plus_one(node: ast.AST) -> None:
    assert isinstance(node, ast.Subscript)
    node.slice = ast.BinOp(node.slice, ast.Add(), ast.Constant(1))


_OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Div: "/", ast.Mod: "%", ast.Pow: "**",
            ast.And: "and", ast.Or: "or", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==",
            ast.NotEq: "!=", ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}


def _op(op: ast.AST) -> str:
    return _OP_TEXT.get(type(op), type(op).__name__)


def _sites(tree: ast.Module) -> list[_Site]:
    index = {id(n): i for i, n in enumerate(ast.walk(tree))}
    sites = []
    for node in _inside_functions(tree):
        for kind, change, how in _sites_of(node):
            sites.append(_Site(kind, (index[id(node)],), change, how))
    return sites


def _pick(sites: list[_Site], limit: int) -> list[_Site]:
    """Round-robin over kinds, in source order within a kind: varied bugs, deterministic choice."""
    by_kind = {k: [s for s in sites if s.kind == k] for k in KINDS}
    picked: list[_Site] = []
    while len(picked) < limit and any(by_kind.values()):
        for kind in KINDS:
            if by_kind[kind] and len(picked) < limit:
                queue = by_kind[kind]
                picked.append(queue.pop(len(queue) // 2 if len(picked) >= len(KINDS) else 0))
    return picked


def _apply(tree: ast.Module, site: _Site) -> tuple[str, int] | None:
    clone = copy.deepcopy(tree)
    nodes = list(ast.walk(clone))
    target = nodes[site.path[0]]
    line = getattr(target, "lineno", 0)
    replacement = site.apply(target)
    if replacement is not None:
        if not _replace(clone, target, replacement):
            return None
    try:
        source = ast.unparse(ast.fix_missing_locations(clone))
        compile(source, "<mutant>", "exec")
    except (SyntaxError, ValueError, TypeError):
        return None
    return source, line


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> bool:
    for parent in ast.walk(tree):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return True
            if isinstance(value, list) and any(v is old for v in value):
                value[[i for i, v in enumerate(value) if v is old][0]] = new
                return True
    return False


def mutants(source: str, limit: int = 8) -> list[Mutant]:
    """Up to `limit` distinct, compiling mutants of `source` (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    original = ast.unparse(tree)
    out: list[Mutant] = []
    seen = {original}
    for site in _pick(_sites(tree), limit * 2):
        made = _apply(tree, site)
        if made is None or made[0] in seen:
            continue
        seen.add(made[0])
        out.append(Mutant(site.kind, made[1], site.change, made[0]))
        if len(out) == limit:
            break
    return out


__all__ = ["KINDS", "Mutant", "mutants"]
