"""Output schemas for recipe-defined tasks: a JSON Schema object, checked at recipe load, and the
parsers that turn a teacher's answer into values that fit it.

Two answer formats:

- `json`: the answer is one JSON object. With structured output (`response_format`) the server
  guarantees it; without, the object is extracted from text (a ```json fence, or the first
  balanced `{...}`), so chatty small models still parse.
- `sections`: `Name: value` sections labelled by the schema's property names (the built-in tasks'
  format, which small models follow best); a property with `"contentMediaType": "text/x-python"`
  takes the first ```python block of its section (or of the whole answer, when it is the only one).

Either way the values are validated against the schema; a mismatch is a `ParseFailure` with the
reason, so the client re-asks and, in the end, rejects with it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema

from synthloop.backends.base import Response
from synthloop.backends.client import ParseFailure
from synthloop.errors import RecipeError

CODE_MEDIA = "text/x-python"
_FENCE = re.compile(r"```(?:json)?[ \t]*\n(.*?)```", re.S | re.I)
_CODE = re.compile(r"```(?:python3?|py)?[ \t]*\n(.*?)```", re.S | re.I)


def check_schema(where: str, schema: Any) -> dict[str, Any]:
    """The schema, if it is a valid JSON Schema for an object with properties; else one line."""
    if not isinstance(schema, dict):
        raise RecipeError(f"{where}: the output schema must be a table (JSON Schema object), got {type(schema).__name__}")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as e:
        path = ".".join(str(p) for p in e.path) or "(top)"
        raise RecipeError(f"{where}: invalid JSON Schema at '{path}': {e.message[:160]} (fix that key; see docs/tasks.md)") from None
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict) or not schema["properties"]:
        raise RecipeError(f"{where}: the output schema must have type = \"object\" and at least one entry in 'properties' (add them)")
    return schema


def load_schema_file(where: str, text: str) -> Any:
    """A schema file's JSON; a syntax error names its line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise RecipeError(f"{where}:{e.lineno}: not valid JSON: {e.msg} (fix the syntax at that line)") from None


def response_format(name: str, schema: dict[str, Any]) -> str:
    """The OpenAI `response_format` for a schema, as canonical JSON (a `Request` field is hashable)."""
    fmt = {"type": "json_schema", "json_schema": {"name": re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64], "schema": schema, "strict": False}}
    return json.dumps(fmt, sort_keys=True, separators=(",", ":"))


def extract_json(text: str) -> dict[str, Any]:
    """The answer's JSON object: the whole text, a fenced block, or the first balanced `{...}`."""
    candidates = [text.strip(), *(m.group(1) for m in _FENCE.finditer(text))]
    start = text.find("{")
    if start >= 0:
        end = _balanced_end(text, start)
        if end:
            candidates.append(text[start:end])
    for c in candidates:
        try:
            value = json.loads(c)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    raise ParseFailure("no_json: no JSON object found in the answer")


def _balanced_end(text: str, start: int) -> int:
    """End index of the `{...}` opening at `start` (strings and escapes respected), 0 if unclosed."""
    depth, in_str, esc = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return 0


def parse_sections(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """`Name: value` sections, labelled by the schema's property names (first of each wins)."""
    props: dict[str, Any] = schema["properties"]
    labels = "|".join(re.escape(p).replace("_", "[ _]") for p in sorted(props, key=len, reverse=True))
    section = re.compile(rf"^\s*[#*]*\s*({labels})\s*[*]*\s*:[*]*[ \t]*", re.M | re.I)
    found: dict[str, str] = {}
    matches = list(section.finditer(text))
    for m, nxt in zip(matches, [*matches[1:], None]):
        key = _prop_named(m.group(1), props)
        found.setdefault(key, text[m.end() : nxt.start() if nxt else len(text)].strip())
    code_props = [p for p, s in props.items() if isinstance(s, dict) and s.get("contentMediaType") == CODE_MEDIA]
    for p in code_props:
        code = _CODE.search(found.get(p, "")) or (_CODE.search(text) if len(code_props) == 1 else None)
        if code:
            found[p] = code.group(1).strip()
        else:
            found.pop(p, None)
    return {k: _coerce(v, props[k]) for k, v in found.items()}


def _prop_named(label: str, props: dict[str, Any]) -> str:
    norm = label.lower().replace(" ", "_")
    return next(p for p in props if p.lower() == norm)


def _coerce(value: str, prop: Any) -> Any:
    """A section's text as the property's type (numbers and booleans), else the text."""
    kind = prop.get("type") if isinstance(prop, dict) else None
    if kind in ("integer", "number"):
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError:
            return value
    if kind == "boolean":
        return value.strip().lower() in ("true", "yes")
    return value


def parse_output(resp: Response, schema: dict[str, Any], fmt: str) -> dict[str, Any]:
    """Parse and validate one answer; `ParseFailure` with the reason when it does not fit."""
    if resp.finish_reason == "length" and fmt == "json" and not resp.text.rstrip().endswith("}"):
        raise ParseFailure("truncated: the answer hit max_tokens before the JSON object closed (raise teacher.max_tokens)")
    values = extract_json(resp.text) if fmt == "json" else parse_sections(resp.text, schema)
    try:
        jsonschema.validate(values, schema)
    except jsonschema.ValidationError as e:
        where = ".".join(str(p) for p in e.path) or "(object)"
        raise ParseFailure(f"schema_mismatch: {where}: {e.message[:120]}") from None
    return values


__all__ = ["CODE_MEDIA", "check_schema", "extract_json", "load_schema_file", "parse_output", "parse_sections", "response_format"]
