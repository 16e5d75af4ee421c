"""A synthetic corpus with planted truth: near-duplicates, exact duplicates, contaminated items
and PII, each recorded, so recall and precision of the curation stages can be measured
(bench/bench_curation.py at 20k documents, the tests at a few hundred)."""

from __future__ import annotations

import ast
import gzip
import itertools
import json
import random
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from synthloop.curation.pii import luhn_ok
from synthloop.curation.text import words


@dataclass
class PlantedCorpus:
    docs: list[str]
    near_pairs: set[tuple[int, int]] = field(default_factory=set)  # (original, edited copy)
    exact_pairs: set[tuple[int, int]] = field(default_factory=set)  # (original, re-cased/spaced copy)
    eval_items: list[tuple[str, str]] = field(default_factory=list)
    contaminated: dict[int, str] = field(default_factory=dict)  # doc -> eval item id
    pii: dict[int, str] = field(default_factory=dict)  # doc -> kind planted


def _vocab(rng: random.Random, size: int) -> list[str]:
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    return ["".join(rng.choice(letters[: rng.randint(8, 26)]) for _ in range(rng.randint(2, 10))) for _ in range(size)]


def _card(rng: random.Random) -> str:
    while True:
        digits = "4" + "".join(rng.choice("0123456789") for _ in range(15))
        if luhn_ok(digits):
            return " ".join(digits[i : i + 4] for i in range(0, 16, 4))


def _pii(rng: random.Random, kind: str) -> str:
    return {
        "email": f"{rng.choice(['ana', 'li', 'omar'])}.{rng.randint(1, 999)}@mail{rng.randint(1, 99)}.org",
        "phone": f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        "credit_card": _card(rng),
        "ip": f"{rng.randint(11, 99)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "secret": "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
    }[kind]


PII_KINDS = ("email", "phone", "credit_card", "ip", "secret")


def make_planted_corpus(n: int = 20_000, *, seed: int = 0, words_per_doc: int = 170, near_rate: float = 0.05,
                        exact_rate: float = 0.02, edit_rate: float = 0.02, contaminated_rate: float = 0.01,
                        pii_rate: float = 0.02, n_eval: int = 200) -> PlantedCorpus:
    """`n` documents of ~`words_per_doc` Zipf-distributed words (~1 KB each). A `near_rate` share
    are copies of an earlier document with `edit_rate` of their words replaced; `exact_rate` are
    re-cased, re-spaced copies; `contaminated_rate` carry a 20-word span of an eval item;
    `pii_rate` carry one PII value. Only clean documents are copied."""
    rng = random.Random(seed)
    vocab = _vocab(rng, 30_000)
    cum = list(itertools.accumulate(1 / (r + 1) for r in range(len(vocab))))

    def fresh(k: int) -> list[str]:
        return rng.choices(vocab, cum_weights=cum, k=k)

    out = PlantedCorpus(docs=[])
    out.eval_items = [(f"eval-{i}", " ".join(fresh(60))) for i in range(n_eval)]
    originals: list[int] = []
    for i in range(n):
        roll = rng.random()
        if roll < near_rate and originals:
            src = rng.choice(originals)
            w = out.docs[src].split(" ")
            for k in rng.sample(range(len(w)), max(1, round(edit_rate * len(w)))):
                w[k] = rng.choice(vocab)
            out.docs.append(" ".join(w))
            out.near_pairs.add((src, i))
        elif roll < near_rate + exact_rate and originals:
            src = rng.choice(originals)
            out.docs.append("  ".join(out.docs[src].upper().split(" ")))
            out.exact_pairs.add((src, i))
        else:
            w = fresh(words_per_doc)
            r2 = rng.random()
            if r2 < contaminated_rate:
                item_id, text = rng.choice(out.eval_items)
                ew = text.split(" ")
                at = rng.randrange(len(ew) - 20)
                w[40:40] = ew[at : at + 20]
                out.contaminated[i] = item_id
            elif r2 < contaminated_rate + pii_rate:
                kind = rng.choice(PII_KINDS)
                w[30:30] = ["contact:", _pii(rng, kind)]
                out.pii[i] = kind
            else:
                originals.append(i)  # only clean documents are copied: each truth set stays exact
            out.docs.append(" ".join(w))
    return out




# -- human paragraphs with planted truth (bench/bench_dedup.py) -------------------------------------
_ROFF_ESCAPE = re.compile(r"\\f(?:\[[^]]*\]|\(..|.)|\\[(*]..|\\s[+-]?\d|\\[&|^,/%:]|\\\"[^\n]*")
_PARA_BREAK = re.compile(r"^\.(?:PP|P|LP|SH|SS|TP|IP|HP|br|sp|RS|RE|nf|fi|TH|EX|EE)\b")


def _roff_paragraphs(source: str) -> Iterator[str]:
    """Crude roff to prose: macro lines break paragraphs (font macros keep their text), escapes go."""
    buf: list[str] = []
    for line in source.splitlines():
        if line.startswith((".", "'")):
            if _PARA_BREAK.match(line) or line.startswith(".\\\""):
                if buf:
                    yield " ".join(buf)
                buf = []
                continue
            line = line.split(" ", 1)[1] if " " in line else ""
        line = _ROFF_ESCAPE.sub("", line).replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ")
        if line.strip():
            buf.append(line.strip())
    if buf:
        yield " ".join(buf)


def _docstring_paragraphs(source: str) -> Iterator[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                yield from (" ".join(p.split()) for p in re.split(r"\n\s*\n", doc))


def _golden_paragraphs() -> Iterator[str]:
    path = Path(__file__).resolve().parents[1] / "grounding" / "data" / "python-docs.jsonl.gz"
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                yield from (" ".join(p.split()) for p in json.loads(line)["text"].split("\n\n"))


def human_paragraphs(*, min_chars: int = 250, max_chars: int = 2000, limit: int | None = None) -> list[str]:
    """Distinct human-written paragraphs of `min_chars`..`max_chars` found on this machine: English
    manual pages (/usr/share/man/man[1-8]), the packaged python-docs snapshot and the docstrings of
    the Python standard library. Deterministic order; exact duplicates (normalised) dropped, and so
    are paragraphs sharing a 12-word run with an earlier one (boilerplate repeated across man pages
    and docstrings), so the planted pairs are the only near-duplicates by construction."""
    seen: set[str] = set()
    spans: set[int] = set()
    out: list[str] = []

    def take(p: str) -> bool:
        if not min_chars <= len(p) <= max_chars:
            return False
        w = words(p)
        key = " ".join(w)
        grams = {hash(tuple(w[i : i + 12])) for i in range(0, max(1, len(w) - 11))}
        if key in seen or grams & spans or len(w) < 20:
            return False
        seen.add(key)
        spans.update(grams)
        out.append(p)
        return limit is not None and len(out) >= limit

    for source in _sources():
        for p in source:
            if take(p):
                return out
    return out


def _sources() -> Iterator[Iterator[str]]:
    yield _golden_paragraphs()
    for section in range(1, 9):
        for path in sorted(Path(f"/usr/share/man/man{section}").glob("*.gz")):
            try:
                yield _roff_paragraphs(gzip.open(path, "rt", encoding="utf-8", errors="replace").read())
            except (OSError, EOFError):
                continue
    for path in sorted(Path(sys.base_prefix).glob("lib/python3*/**/*.py")):
        if "test" not in path.parts and "site-packages" not in path.parts:
            yield _docstring_paragraphs(path.read_text(encoding="utf-8", errors="replace"))


@dataclass
class HumanPlanted:
    """Paragraphs with planted near-duplicates: `near[(src, copy)] = edit rate`."""

    docs: list[str]
    near: dict[tuple[int, int], float] = field(default_factory=dict)
    exact: set[tuple[int, int]] = field(default_factory=set)


def edit_words(text: str, rate: float, rng: random.Random, pool: Sequence[str]) -> str:
    """`rate` of the words edited (at least one): half replaced by a word from `pool`, a quarter
    deleted, a quarter preceded by an inserted word; positions distinct."""
    w = text.split()
    edits = max(1, round(rate * len(w)))
    for k in sorted(rng.sample(range(len(w)), min(edits, len(w))), reverse=True):
        op = rng.random()
        if op < 0.5:
            w[k] = rng.choice(pool)
        elif op < 0.75:
            del w[k]
        else:
            w.insert(k, rng.choice(pool))
    return " ".join(w)


def plant_near_duplicates(paragraphs: Sequence[str], *, seed: int = 0, rates: Sequence[float] = (0.02, 0.05, 0.10),
                          near_share: float = 0.15, exact_share: float = 0.02, n: int | None = None) -> HumanPlanted:
    """A shuffled corpus of `paragraphs` (or `n` of them) where `near_share` of the documents are
    edited copies of an earlier original (edit rate drawn evenly from `rates`) and `exact_share`
    re-cased, re-spaced copies. Copies come after their original; originals are never copied twice."""
    rng = random.Random(seed)
    src = list(paragraphs)
    rng.shuffle(src)
    if n is not None:
        src = src[:n]
    pool = [w for p in src[:500] for w in p.split()]
    out = HumanPlanted(docs=[])
    originals: list[int] = []
    for text in src:
        roll = rng.random()
        if roll < near_share + exact_share and originals:
            orig = originals.pop(rng.randrange(len(originals)))
            if roll < near_share:
                rate = rates[rng.randrange(len(rates))]
                out.near[(orig, len(out.docs))] = rate
                out.docs.append(edit_words(out.docs[orig], rate, rng, pool))
            else:
                out.exact.add((orig, len(out.docs)))
                out.docs.append("  ".join(out.docs[orig].upper().split(" ")))
        originals.append(len(out.docs))
        out.docs.append(text)
    return out


__all__ = ["HumanPlanted", "PII_KINDS", "PlantedCorpus", "edit_words", "human_paragraphs", "make_planted_corpus",
           "plant_near_duplicates"]
