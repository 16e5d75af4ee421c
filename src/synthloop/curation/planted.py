"""A synthetic corpus with planted truth: near-duplicates, exact duplicates, contaminated items
and PII, each recorded, so recall and precision of the curation stages can be measured
(bench/bench_curation.py at 20k documents, the tests at a few hundred)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from synthloop.curation.pii import luhn_ok


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


__all__ = ["PII_KINDS", "PlantedCorpus", "make_planted_corpus"]
