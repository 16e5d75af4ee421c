"""`synthloop expand RECIPE`: the teacher proposes sub-topics, edge and rare cases and personas for
the recipe's domain (a taxonomy expansion); they are de-duplicated, capped and written to a plan
file for you to read and edit. Point the recipe at it with `[plan] include = "FILE"`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from synthloop.backends.base import Request, Response
from synthloop.recipe import Recipe, load_recipe

#: What is asked for, and the plan axis it goes to.
ASKS = {
    "topics": "sub-topics of {domain} a learner must know",
    "rare": "edge cases and rare, tricky situations in {domain}",
    "personas": "kinds of people who would ask about {domain}",
}
_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*(.+?)\s*$", re.M)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("expand", help="let the teacher propose sub-topics, rare cases and personas (a plan file to edit)", description=__doc__)
    p.add_argument("recipe", help="path to a recipe TOML file")
    p.add_argument("--out", type=Path, default=None, help="plan file to write (default: RECIPE's name + .plan.toml beside it)")
    p.add_argument("--max", dest="cap", type=int, default=12, help="at most this many values per axis (default 12)")
    p.add_argument("--rare-weight", type=float, default=1.0, help="sampling weight of each rare case (default 1)")
    p.set_defaults(func=cmd_expand)


def items_of(text: str) -> list[str]:
    """List items from a reply (bullets or numbers), cleaned."""
    return [m.group(1).strip(" .*`\"'") for m in _ITEM.finditer(text) if 2 <= len(m.group(1)) <= 120]


def dedup(values: list[str], cap: int) -> list[str]:
    """Case/space/punctuation-insensitive de-duplication (and near-duplicates by word set), in order, capped."""
    out: list[str] = []
    seen: list[set[str]] = []
    for v in values:
        words = set(re.findall(r"[a-z0-9]+", v.lower()))
        if not words or any(len(words & s) / len(words | s) >= 0.8 for s in seen):
            continue
        seen.append(words)
        out.append(v)
    return out[:cap]


def expand(recipe: Recipe, client: Any, cap: int) -> dict[str, list[str]]:
    domain = recipe.description or ", ".join(recipe.plan.topics)
    reqs = [Request.chat([{"role": "system", "content": "You list things, one per line, each line starting with '- '."},
                          {"role": "user", "content": f"List {cap} {ask.format(domain=domain)}."}],
                         model=recipe.teacher.model, temperature=recipe.teacher.temperature, max_tokens=recipe.teacher.max_tokens,
                         seed=recipe.seed, tag=f"expand:{axis}") for axis, ask in ASKS.items()]
    answers = client.complete_sync(reqs)
    out: dict[str, list[str]] = {}
    for axis, answer in zip(ASKS, answers):
        found = items_of(answer.text) if isinstance(answer, Response) else []
        base = list(recipe.plan.topics) if axis == "topics" else list(recipe.plan.personas) if axis == "personas" else []
        out[axis] = dedup(base + found, cap + len(base))
    return out


def plan_file(expanded: dict[str, list[str]], rare_weight: float, source: str) -> str:
    import tomli_w

    rare = [r for r in expanded["rare"] if r not in expanded["topics"]]
    plan: dict[str, Any] = {"topics": expanded["topics"] + rare, "personas": expanded["personas"]}
    if rare and rare_weight != 1.0:
        plan["weights"] = {"topic": {r: rare_weight for r in rare}}
    head = (f"# Written by `synthloop expand {source}`: read it, edit it (delete what is wrong, add what is missing),\n"
            "# then set `include = \"<this file>\"` in the recipe's [plan]. Keys set in the recipe win.\n"
            f"# Rare and edge cases (the last {len(rare)} topics) can be re-weighted in [plan.weights.topic].\n")
    return head + tomli_w.dumps({"plan": plan})


def cmd_expand(args: argparse.Namespace) -> int:
    from synthloop.backends import make_client

    recipe = load_recipe(args.recipe)
    out = args.out or Path(args.recipe).with_suffix(".plan.toml")
    client = make_client(recipe.teacher)
    expanded = expand(recipe, client, args.cap)
    out.write_text(plan_file(expanded, args.rare_weight, args.recipe), encoding="utf-8")
    counts = ", ".join(f"{len(v)} {k}" for k, v in expanded.items())
    print(f"wrote {out}: {counts}. Edit it, then add include = \"{out.name}\" to the recipe's [plan].")
    return 0


__all__ = ["add_parser", "cmd_expand", "dedup", "expand", "items_of", "plan_file"]
