"""Runs prose examples inside the sandbox and checks what they claim to print. Stdlib only.

`blocks.json` next to it: a list of {"code": str, "doctest": bool}. All blocks share one
namespace, in order (later examples use earlier names). For each block, one JSON line after the
nonce (`sys.argv[1]`): {"block": i, "stdout": what it printed, "error": "Type: msg" or "",
"claims": [[line, claimed, actual, ok], ...]}. Inline claims are comments on a statement's line or
on the comment lines right after it: `# Output: X`, `# Prints: X`, `# -> X`, `# => X`, or `# prints X` where X looks like a value (a number,
a quote, a bracket, True/False/None). A claim is
compared with what that statement printed, else with the value it computed (an expression, or the
assigned variable), as `repr` or `str`, whitespace aside. A `>>>` block runs as a doctest.
"""

import ast
import contextlib
import io
import json
import re
import sys

NONCE = sys.argv[1] if len(sys.argv) > 1 else ""
PROTOCOL = sys.stdout
CLAIM = re.compile(
    r"#\s*(?:(?:output|prints?|result|returns?|gives)\s*:|->|=>|(?:prints?|outputs?|gives)\s+(?=[-\d'\"\[{(`]|True\b|False\b|None\b))"
    r"\s*(.*)$",
    re.I,
)
CONT = re.compile(r"^\s*#\s?(.*)$")


def emit(**data):
    PROTOCOL.write("%s %s\n" % (NONCE, json.dumps(data)))
    PROTOCOL.flush()


def norm(text):
    return " ".join(str(text).split()).strip("`'\" ")


def claims_of(source, tree):
    """{statement index: (line, claimed text)} for statements that carry a claim comment."""
    lines = source.splitlines()
    found = {}
    for i, stmt in enumerate(tree.body):
        at, m = _claim_line(lines, stmt.end_lineno)
        if m is None:
            continue
        claim, k = m.group(1).strip(), at + 1
        while not claim and k < len(lines) and CONT.match(lines[k]) and lines[k].strip() != "#":
            claim = CONT.match(lines[k]).group(1).strip()  # `# Output:` then the value on the next comment line
            k += 1
        if claim:
            found[i] = (stmt.end_lineno, claim)
    return found


def _claim_line(lines, end):
    """(index, match) of the claim comment on the statement's last line, or on the comment lines
    right after it (before the next statement); (None, None) if there is none."""
    candidates = [end - 1]
    j = end
    while j < len(lines) and CONT.match(lines[j]):
        candidates.append(j)
        j += 1
    for at in candidates:
        if at >= len(lines):
            continue
        m = CLAIM.search(lines[at])
        if m is not None and _is_comment(lines[at], m):
            return at, m
    return None, None


def _is_comment(line, m):
    """The match is in a real comment (not inside a string on that line)."""
    before = line[: m.start()]
    return before.count("'") % 2 == 0 and before.count('"') % 2 == 0


def matches(claim, printed, value, has_value):
    want = norm(claim)
    if printed.strip():
        return want == norm(printed) or (has_value and want in (norm(repr(value)), norm(str(value))))
    if has_value:
        return want in (norm(repr(value)), norm(str(value)))
    return False


def run_statement(stmt, ns, out):
    """Exec one statement; returns (value, has_value) for expressions and simple assignments."""
    if isinstance(stmt, ast.Expr):
        code = compile(ast.Expression(stmt.value), "<example>", "eval")
        with contextlib.redirect_stdout(out):
            value = eval(code, ns)
        return value, True
    code = compile(ast.Module([stmt], []), "<example>", "exec")
    with contextlib.redirect_stdout(out):
        exec(code, ns)
    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
        if isinstance(target, ast.Name):
            return ns.get(target.id), True
    return None, False


def run_block(i, code, ns):
    tree = ast.parse(code)
    claims = claims_of(code, tree)
    printed_all, results, error = io.StringIO(), [], ""
    for k, stmt in enumerate(tree.body):
        out = io.StringIO()
        try:
            value, has_value = run_statement(stmt, ns, out)
        except BaseException as e:  # noqa: BLE001 - an example may raise anything
            printed_all.write(out.getvalue())
            error = ("%s: %s" % (type(e).__name__, e))[:300]
            break
        printed_all.write(out.getvalue())
        if k in claims:
            line, claim = claims[k]
            ok = matches(claim, out.getvalue(), value, has_value)
            results.append([line, claim[:200], (out.getvalue().strip() or repr(value))[:200], ok])
    emit(block=i, stdout=printed_all.getvalue()[-4000:], error=error, claims=results)


def run_doctest(i, code, ns):
    import doctest

    parser, out = doctest.DocTestParser(), io.StringIO()
    test = parser.get_doctest(code, ns, "example%d" % i, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    runner.run(test, out=out.write, clear_globs=False)
    results = []
    failures = set()
    for block in out.getvalue().split("*" * 70):
        m = re.search(r"Failed example:\n\s+(.+?)\n(?:Expected:\n(.*?)Got:\n(.*)|Exception raised)", block, re.S)
        if m:
            failures.add(m.group(1).strip())
            results.append([0, (m.group(2) or "").strip()[:200] or "(no exception)", (m.group(3) or "an exception").strip()[:200], False])
    for ex in test.examples:
        if ex.source.strip() not in failures and ex.want.strip():
            results.append([ex.lineno + 1, ex.want.strip()[:200], ex.want.strip()[:200], True])
    emit(block=i, stdout="", error="", claims=results)


def main():
    with open("blocks.json", encoding="utf-8") as f:
        blocks = json.load(f)
    ns = {"__name__": "__main__"}
    for i, block in enumerate(blocks):
        (run_doctest if block["doctest"] else run_block)(i, block["code"], ns)
    emit(done=True)


if __name__ == "__main__":
    PROTOCOL = sys.stdout
    main()
