"""Runs teacher-written tests against a teacher-written solution, inside the sandbox. Stdlib only.

Files next to it: `solution.py` (imported as the module `solution`) and `tests.py`. Tests may be
pytest-style `def test_*()` functions, `class Test*` with `test_*` methods (plain or
`unittest.TestCase`), and bare top-level `assert` statements; the solution's names are in scope, as
if the tests started with `from solution import *`.

Protocol (stdout, one JSON object per line after `sys.argv[1]`, the run's nonce): `plan` (the test
names), one `result` per test as it finishes (so a timeout keeps partial results), `solution_error`
if importing the solution failed, then `done`. What the code prints goes to a capped buffer, not to
the protocol stream.

Mutation run: when `mutants.json` (a list of sources) is present and every test passed, each mutant
replaces the `solution` module in turn, the tests file runs again in a fresh namespace, and one
`mutant` event says whether a test failed on it (`killed`, and by what). Each mutant gets at most
`sys.argv[2]` seconds (a mutant that loops forever is killed by the alarm: it was noticed).
"""

import ast
import builtins
import contextlib
import inspect
import io
import json
import os
import signal
import sys
import traceback
import types

TESTS_FILE = "tests.py"
NONCE = ""
PROTOCOL = sys.stdout  # replaced by a private duplicate of fd 1 when run as the main script


def emit(event, **data):
    PROTOCOL.write("%s %s\n" % (NONCE, json.dumps(dict(event=event, **data))))
    PROTOCOL.flush()


class Sink(io.TextIOBase):
    """Swallows what the code prints (bounded), so the protocol stream stays clean."""

    def __init__(self, limit=8192):
        self.kept, self.limit = [], limit

    def writable(self):
        return True

    def write(self, s):
        if self.limit > 0:
            self.kept.append(s[: self.limit])
            self.limit -= len(s)
        return len(s)


def describe(exc):
    """`Type: message`, and for a bare failed `assert` the assert's source line."""
    message = str(exc).replace(os.getcwd() + os.sep, "")  # the random work dir would make reasons differ per run
    if isinstance(exc, AssertionError) and not message:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(TESTS_FILE)]
        message = (frames[-1].line or "") if frames else ""
    text = "%s: %s" % (type(exc).__name__, message) if message else type(exc).__name__
    return text[:400]


def run_unit(name, fn, sink, failed, report=True):
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            fn()
    except MutantTimeout:
        raise
    except BaseException as e:  # noqa: BLE001 - a test may raise anything, SystemExit included
        failed.append((name, describe(e)))
        if report:
            emit("result", name=name, ok=False, error=describe(e))
        return
    if report:
        emit("result", name=name, ok=True)


def assert_name(stmt):
    return ("line %d: assert %s" % (stmt.lineno, ast.unparse(stmt.test)))[:200]


def plan(tree):
    """Static list of test units: (name, kind, payload) in the order they will run."""
    units, later = [], []
    for stmt in tree.body:
        if isinstance(stmt, ast.Assert):
            units.append((assert_name(stmt), "assert", stmt))
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name.startswith("test"):
            later.append((stmt.name, "function", stmt.name))
        elif isinstance(stmt, ast.ClassDef) and stmt.name.startswith("Test"):
            for item in stmt.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    later.append(("%s.%s" % (stmt.name, item.name), "method", (stmt.name, item.name)))
    return units, later


def call_function(ns, name):
    fn = ns.get(name)
    if not callable(fn):
        raise NameError("test function %s is not defined after running the tests file" % name)
    required = [p for p in inspect.signature(fn).parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if required:
        raise TypeError("%s takes arguments (%s): pytest fixtures and parametrize are not supported"
                        % (name, ", ".join(p.name for p in required)))
    if inspect.iscoroutinefunction(fn):
        import asyncio

        asyncio.run(fn())
    else:
        fn()


def call_method(ns, cls_name, method):
    cls = ns[cls_name]
    unittest = sys.modules.get("unittest")
    if unittest is not None and isinstance(cls, type) and issubclass(cls, unittest.TestCase):
        cls(method).debug()  # setUp, the test, tearDown; failures raise
        return
    obj = cls()
    if hasattr(obj, "setup_method"):
        obj.setup_method(getattr(obj, method))
    getattr(obj, method)()


def load_solution(ns):
    try:
        import solution
    except BaseException as e:  # noqa: BLE001
        emit("solution_error", error=describe(e))
        return False
    ns.update({k: v for k, v in vars(solution).items() if not (k.startswith("__") and k.endswith("__"))})
    return True


def main(mutant_timeout):
    with open(TESTS_FILE, encoding="utf-8") as f:
        tree = ast.parse(f.read(), TESTS_FILE)
    asserts, later = plan(tree)
    emit("plan", tests=[name for name, _, _ in asserts + later])
    ns = {"__name__": "tests", "__builtins__": builtins}
    sink = Sink()
    failed = []
    if load_solution(ns):
        run_suite(tree, ns, later, sink, failed, report=True)
        if not failed and os.path.exists("mutants.json"):
            run_mutants(tree, later, sink, mutant_timeout)
    state = sys.modules.get("_synthloop_sandbox")
    emit("done", violations=list(getattr(state, "violations", [])))


def run_suite(tree, ns, later, sink, failed, report):
    """The whole suite once: top-level statements, then test functions and methods."""
    run_body(tree, ns, sink, failed, report)
    for name, kind, payload in later:
        if kind == "function":
            run_unit(name, lambda: call_function(ns, payload), sink, failed, report)
        else:
            run_unit(name, lambda: call_method(ns, *payload), sink, failed, report)


class MutantTimeout(BaseException):
    """Raised by the alarm: a BaseException, so a test's `except Exception` cannot swallow it."""


def _alarm(signum, frame):
    raise MutantTimeout("the mutant ran over its time")


def run_mutants(tree, later, sink, timeout):
    with open("mutants.json", encoding="utf-8") as f:
        sources = json.load(f)
    signal.signal(signal.SIGALRM, _alarm)
    for i, source in enumerate(sources):
        module = types.ModuleType("solution")
        module.__file__ = os.path.abspath("solution.py")
        sys.modules["solution"] = module
        failed = []
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            exec(compile(source, "solution.py", "exec"), module.__dict__)
            ns = {"__name__": "tests", "__builtins__": builtins}
            ns.update({k: v for k, v in vars(module).items() if not (k.startswith("__") and k.endswith("__"))})
            run_suite(tree, ns, later, sink, failed, report=False)
        except BaseException as e:  # noqa: BLE001 - importing the mutant raised, or the alarm
            failed.append(("import", describe(e)))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        emit("mutant", id=i, killed=bool(failed), by=(failed[0][0] + ": " + failed[0][1])[:200] if failed else "")


def run_body(tree, ns, sink, failed, report):
    """Top-level statements in order: an `assert` is a test; anything else is setup, and a setup
    statement that raises is reported as a failed unit of its own."""
    for stmt in tree.body:
        code = compile(ast.Module([stmt], []), TESTS_FILE, "exec")
        if isinstance(stmt, ast.Assert):
            run_unit(assert_name(stmt), lambda: exec(code, ns), sink, failed, report)
            continue
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                exec(code, ns)
        except MutantTimeout:
            raise
        except BaseException as e:  # noqa: BLE001
            failed.append(("setup line %d" % stmt.lineno, describe(e)))
            if report:
                emit("result", name="setup line %d" % stmt.lineno, ok=False, error=describe(e), setup=True)


if __name__ == "__main__":
    NONCE = sys.argv[1]
    PROTOCOL = os.fdopen(os.dup(1), "w", encoding="utf-8")
    main(float(sys.argv[2]) if len(sys.argv) > 2 else 1.0)
