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
from collections.abc import Callable, Iterator, Sequence
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
        grams = {hash(tuple(w[i : i + 12])) for i in range(max(1, len(w) - 11))}
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
                with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
                    source = fh.read()
            except (OSError, EOFError):
                continue
            yield _roff_paragraphs(source)
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


# -- structured PII planted in human paragraphs (bench/bench_dedup.py --pii, tests) ------------------
def _iban_value(rng: random.Random) -> str:
    country, length = rng.choice((("DE", 18), ("GB", 18), ("FR", 23), ("NL", 14), ("ES", 20)))
    bban = ("NWBK" if country == "GB" else "") + "".join(rng.choice("0123456789") for _ in range(length - (4 if country == "GB" else 0)))
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in moved)) % 97
    value = f"{country}{check:02d}{bban}"
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if rng.random() < 0.5 else value


def _card_value(rng: random.Random) -> str:
    prefix, length = rng.choice((("4", 16), ("5" + str(rng.randint(1, 5)), 16), ("3" + rng.choice("47"), 15)))
    while True:
        digits = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix)))
        if luhn_ok(digits):
            break
    sep = rng.choice((" ", "-", ""))
    groups = (4, 6, 5) if length == 15 else (4, 4, 4, 4)
    parts, at = [], 0
    for g in groups:
        parts.append(digits[at : at + g])
        at += g
    return sep.join(parts)


def _public_ipv4(rng: random.Random) -> str:
    import ipaddress

    while True:
        value = ".".join(str(rng.randint(1, 254)) for _ in range(4))
        if ipaddress.ip_address(value).is_global:
            return value


def _b32(rng: random.Random, n: int, alphabet: str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _nino_prefix(rng: random.Random) -> str:
    """Two letters a UK National Insurance number can start with (HMRC's allocation rules)."""
    while True:
        prefix = rng.choice("ABCEGHJKLMNOPRSTWXYZ") + rng.choice("ABCEGHJKLMNPRSTWXYZ")
        if prefix not in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
            return prefix


def _nino(rng: random.Random) -> str:
    pairs = " ".join(str(rng.randint(10, 99)) for _ in range(3))
    return f"{_nino_prefix(rng)} {pairs} {rng.choice('ABCD')}"


def pii_value(rng: random.Random, kind: str) -> str:
    """One realistic value of `kind` (PII_VALUE_KINDS)."""
    up = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    makers: dict[str, Callable[[], str]] = {
        "email": lambda: f"{rng.choice(['ana', 'li.wei', 'omar', 'j.smith'])}{rng.randint(1, 999)}@{rng.choice(['mail', 'corp', 'uni-x'])}{rng.randint(1, 99)}.{rng.choice(['org', 'com', 'de', 'co.uk'])}",
        "phone": lambda: rng.choice((f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
                                     f"({rng.randint(200, 989)}) {rng.randint(200, 989)}-{rng.randint(1000, 9999)}",
                                     f"{rng.randint(200, 989)}-{rng.randint(200, 989)}-{rng.randint(1000, 9999)}",
                                     f"+1 {rng.randint(200, 989)} {rng.randint(200, 989)} {rng.randint(1000, 9999)}",
                                     f"+49 30 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}")),
        "credit_card": lambda: _card_value(rng),
        "iban": lambda: _iban_value(rng),
        "ipv4": lambda: _public_ipv4(rng),
        "ipv6": lambda: f"2{rng.randint(0, 0xfff):03x}:{rng.randint(0, 0xffff):x}:{rng.randint(0, 0xffff):x}::{rng.randint(1, 0xffff):x}",
        "national_id": lambda: rng.choice((f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}",
                                           _nino(rng))),
        "secret": lambda: rng.choice(("AKIA" + _b32(rng, 16, up + "234567"), "ghp_" + _b32(rng, 36), "sk-" + _b32(rng, 40),
                                      ("xoxb-" + _b32(rng, 12, "0123456789") + "-" + _b32(rng, 24)), "AIza" + _b32(rng, 35),
                                      "sk_live_" + _b32(rng, 24))),
    }
    return makers[kind]()


PII_VALUE_KINDS = ("email", "phone", "credit_card", "iban", "ipv4", "ipv6", "national_id", "secret")
#: Values that identify no one (RFC 5737 / 3849 documentation ranges, RFC 2606 names, private and
#: loopback addresses): the scrubber must leave them as they are.
KEEP_VALUES = ("192.0.2.{}", "198.51.100.{}", "203.0.113.{}", "2001:db8::{}", "user{}@example.com",
               "admin{}@example.org", "10.0.0.{}", "127.0.0.{}")
_CONTEXTS = ("Contact {} for details.", "The request came from {}.", "Reach the office at {}, then wait.",
             "Logged address ({}) was rejected.", "Use {} as the value;", "The key is {}", "Send it to {}: done.",
             "Source {} and more.")


@dataclass
class PIIPlanted:
    docs: list[str]
    planted: list[tuple[int, str, str]] = field(default_factory=list)  # (doc, kind, value)
    kept: list[tuple[int, str]] = field(default_factory=list)  # (doc, value that must survive)


def plant_pii(paragraphs: Sequence[str], *, n: int = 2000, seed: int = 0, share: float = 0.3) -> PIIPlanted:
    """`n` paragraphs; a `share` of them get one PII value in a sentence inserted at a sentence
    boundary (kinds in turn), a further `share` / 2 a documentation-range value that must be kept."""
    rng = random.Random(seed)
    src = list(paragraphs)
    rng.shuffle(src)
    out = PIIPlanted(docs=[])
    for i, text in enumerate(src[:n]):
        roll = rng.random()
        if roll < share * 1.5:
            if roll < share:
                kind = PII_VALUE_KINDS[len(out.planted) % len(PII_VALUE_KINDS)]
                value = pii_value(rng, kind)
                out.planted.append((i, kind, value))
            else:
                value = rng.choice(KEEP_VALUES).format(rng.randint(1, 200))
                out.kept.append((i, value))
            sentences = text.split(". ")
            at = rng.randrange(len(sentences) + 1)
            sentences.insert(at, rng.choice(_CONTEXTS).format(value).rstrip("."))
            text = ". ".join(sentences)
        out.docs.append(text)
    return out


__all__ = [
    "KEEP_VALUES",
    "PII_KINDS",
    "PII_VALUE_KINDS",
    "HumanPlanted",
    "PIIPlanted",
    "PlantedCorpus",
    "edit_words",
    "human_paragraphs",
    "make_planted_corpus",
    "pii_value",
    "plant_near_duplicates",
    "plant_pii",
]
