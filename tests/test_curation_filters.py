"""Quality filters, PII scrubbing, decontamination, memorisation check, config and stage order."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthloop.curation import CurateConfig, PIIScrubber, PIIStage, QualityFilter, build_curation_stages
from synthloop.curation.config import DecontamConfig, MemorizationConfig, PIIConfig
from synthloop.curation.decontam import Decontaminate, MemorizationCheck
from synthloop.curation.pii import luhn_ok
from synthloop.curation.planted import make_planted_corpus
from synthloop.errors import InputError
from synthloop.pipeline import RunContext, Stage, run_stages
from synthloop.records import EXTERNAL, Record

GOOD = ("Lists in Python keep their items in order. You can append to them, slice them and loop over "
        "them; a comprehension builds a new list from an old one in a single readable line.")


def run(stage: Stage, records: list[Record]) -> tuple[list[Record], RunContext]:
    ctx = RunContext()
    return list(run_stages(records, [stage], ctx)), ctx


def reason_of(stage: Stage, record: Record) -> str:
    kept, ctx = run(stage, [record])
    return "" if kept else ctx.rejected[0].rejected_reason


# -- quality -------------------------------------------------------------------------------------
@pytest.mark.parametrize("record, category", [
    (Record(id="a", text=GOOD), ""),
    (Record(id="a", text="   "), "empty"),
    (Record(id="a", text="ok then"), "too_short"),
    (Record(id="a", text="line one is here\n" * 6 + GOOD), "repeated_lines"),
    (Record(id="a", text="the cat sat on the mat " * 12), "repeated_ngrams"),
    (Record(id="a", text="# # # # heading " * 3 + GOOD), "symbol_ratio"),
    (Record(id="a", text="123 456 789 101 112 131 415 161 718 192 hello world"), "alpha_ratio"),
    (Record(id="a", text="As an AI language model, I cannot help with that. " + GOOD), "refusal"),
    (Record(id="a", task="safety", text="I cannot help with that request, it would hurt someone. " + GOOD), ""),
    (Record(id="a", text=GOOD + " Lorem ipsum dolor sit amet."), "boilerplate"),
    (Record(id="a", explanation=GOOD, problem="Sum a list.", reasoning="", answer="sum(xs)"), "empty_reasoning"),
    (Record(id="a", explanation=GOOD, problem="Sum a list.", reasoning="Add them.", answer=" "), "missing_answer"),
    (Record(id="a", messages=[{"role": "user", "content": GOOD}]), "missing_answer"),
    (Record(id="a", text="Ünïcödé ťèxt wörks fïne hère with enough words to pass every single rule."), ""),
    (Record(id="a", text=" ".join(["word"] * 100_001)), "too_long"),
])
def test_quality_decisions(record: Record, category: str) -> None:
    assert reason_of(QualityFilter(), record).split(":")[0] == category


def test_quality_ignores_code_blocks_for_ratios() -> None:
    code = "```python\n# comment\n# comment\nassert f(1) == 1\nassert f(1) == 1\nassert f(1) == 1\n```"
    assert reason_of(QualityFilter(), Record(id="a", text=GOOD + "\n" + code)) == ""


# -- PII -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected, kinds", [
    ("write to jane.doe@acme.io today", "write to [EMAIL] today", {"email": 1}),
    ("see a@example.com", "see a@example.com", {}),
    ("Ünïcode mail: jürgen@straße.de", "Ünïcode mail: [EMAIL]", {"email": 1}),
    ("call +1 415-555-0132 now", "call [PHONE] now", {"phone": 1}),
    ("card 4111 1111 1111 1111.", "card [CREDIT_CARD].", {"credit_card": 1}),
    ("not a card 4111 1111 1111 1112", "not a card 4111 1111 1111 1112", {}),
    ("IBAN DE89 3704 0044 0532 0130 00", "IBAN [IBAN]", {"iban": 1}),
    ("IBAN DE88 3704 0044 0532 0130 00", "IBAN DE88 3704 0044 0532 0130 00", {}),
    ("server 8.8.8.8, local 192.168.1.1, 127.0.0.1", "server [IP], local 192.168.1.1, 127.0.0.1", {"ip": 1}),
    ("ssn 123-45-6789", "ssn [NATIONAL_ID]", {"national_id": 1}),
    ("key AKIAIOSFODNN7EXAMPLE", "key [SECRET]", {"secret": 1}),
    ('api_key = "abcd1234efgh5678ijkl"', 'api_key = "[SECRET]"', {"secret": 1}),
    ("Dr. Jane Doe said hi", "[NAME] said hi", {"name": 1}),
    ("date 2024-01-15, pi 3.14159, version 1.2.3, n = 12345678901234", None, {}),
    ("", "", {}),
])
def test_pii_detection_and_redaction(text: str, expected: str | None, kinds: dict[str, int]) -> None:
    new, found = PIIScrubber().scrub(text)
    assert dict(found) == kinds
    assert new == (text if expected is None else expected)


def test_pii_stage_rewrites_every_content_field_and_counts() -> None:
    rec = Record(id="a", explanation="mail bob@corp.io", answer="ip 8.8.4.4",
                 messages=[{"role": "user", "content": "call +44 20 7946 0958"}])
    [out], ctx = run(PIIStage(), [rec])
    assert (out.explanation, out.answer, out.messages[0]["content"]) == ("mail [EMAIL]", "ip [IP]", "call [PHONE]")
    assert dict(ctx.stats["pii"].extra) == {"pii_email": 1, "pii_ip": 1, "pii_phone": 1}


def test_pii_reject_mode_rejects_and_still_redacts_the_stored_copy() -> None:
    kept, ctx = run(PIIStage(PIIConfig(action="reject")), [Record(id="a", text="mail bob@corp.io"), Record(id="b", text=GOOD)])
    assert [r.id for r in kept] == ["b"]
    assert ctx.rejected[0].rejected_reason == "pii: email x1" and ctx.rejected[0].text == "mail [EMAIL]"


def test_pii_switch_off_one_kind() -> None:
    assert PIIScrubber(PIIConfig(email=False)).scrub("bob@corp.io")[1] == {}


def test_luhn() -> None:
    assert luhn_ok("79927398713") and not luhn_ok("79927398710")


def test_planted_pii_found() -> None:
    corpus = make_planted_corpus(400, seed=5)
    scrubber = PIIScrubber()
    flagged = {i for i, d in enumerate(corpus.docs) if scrubber.find(d)}
    assert corpus.pii and flagged == set(corpus.pii)


# -- decontamination and memorisation ------------------------------------------------------------
EVAL = "Write a function that returns the sum of the squares of all odd numbers in a list of integers given as input."


def test_decontam_ngram_and_substring_and_clean(tmp_path: Path) -> None:
    evals = tmp_path / "eval.jsonl"
    evals.write_text('{"task_id": "HumanEval/7", "prompt": "' + EVAL + '"}\n', encoding="utf-8")
    stage = Decontaminate.from_config(DecontamConfig(eval_sets=[str(evals)]))
    ngram = Record(id="n", text="Task: WRITE a function that returns the sum of the squares of all odd numbers, please.")
    short = Record(id="c", text="Write a function that returns the sum.")
    kept, ctx = run(stage, [ngram, Record(id="ok", text=GOOD), short])
    assert [r.id for r in kept] == ["ok", "c"]
    assert ctx.rejected[0].rejected_reason.startswith("eval_ngram: 13-gram shared with eval item eval.jsonl#HumanEval/7")
    stage50 = Decontaminate([("item-1", "zz " + "abcdefghij" * 6)], DecontamConfig(ngram=50))
    kept, ctx = run(stage50, [Record(id="s", text="prefix-" + "abcdefghij" * 5 + "-suffix"),
                              Record(id="t", text="prefix-" + "abcdefghij" * 4 + "abcdefghi-suffix")])
    assert [r.id for r in kept] == ["t"]  # 49 shared characters are not enough
    assert ctx.rejected[0].rejected_reason.startswith("eval_substring: 50-char substring shared with eval item item-1")


def test_decontam_plain_text_eval_and_missing_file(tmp_path: Path) -> None:
    evals = tmp_path / "eval.txt"
    evals.write_text("first item is short\n\n" + EVAL + "\n", encoding="utf-8")
    stage = Decontaminate.from_config(DecontamConfig(eval_sets=[str(evals)]))
    _, ctx = run(stage, [Record(id="x", text=EVAL.upper())])
    assert "eval.txt:3" in ctx.rejected[0].rejected_reason
    with pytest.raises(InputError, match="file not found"):
        Decontaminate.from_config(DecontamConfig(eval_sets=[str(tmp_path / "nope.jsonl")]))


def test_planted_contamination_recall_precision() -> None:
    corpus = make_planted_corpus(500, seed=7, contaminated_rate=0.05)
    stage = Decontaminate(corpus.eval_items)
    _, ctx = run(stage, [Record(id=str(i), text=d) for i, d in enumerate(corpus.docs)])
    found = {int(r.id): r.rejected_reason for r in ctx.rejected}
    assert set(found) == set(corpus.contaminated)
    assert all(corpus.contaminated[i] in reason for i, reason in found.items())


def test_memorization_reject_flag_and_human_records_exempt() -> None:
    golden = " ".join(f"word{i}" for i in range(60))
    copy = "Intro. " + " ".join(f"word{i}" for i in range(10, 45)) + " outro."
    kept, ctx = run(MemorizationCheck([golden]), [Record(id="s", text=copy), Record(id="h", text=copy, source=EXTERNAL)])
    assert [r.id for r in kept] == ["h"]
    assert ctx.rejected[0].rejected_reason.startswith("memorized: 32-word span copied from golden[0]")
    [flagged], ctx = run(MemorizationCheck([golden], MemorizationConfig(action="flag")), [Record(id="s", text=copy)])
    assert flagged.verdicts[0].ok is False and ctx.stats["memorization"].extra["flagged"] == 1


# -- config and assembly -------------------------------------------------------------------------
def test_build_stages_order_and_switches(tmp_path: Path) -> None:
    evals = tmp_path / "e.txt"
    evals.write_text(EVAL + "\n", encoding="utf-8")
    cfg = CurateConfig(semantic_dedup=True, decontam=DecontamConfig(eval_sets=[str(evals)]))
    names = [s.name for s in build_curation_stages(cfg, golden_texts=["some human text"])]
    assert names == ["quality", "pii", "decontam", "memorization", "dedup_exact", "dedup_near", "dedup_semantic"]
    assert [s.name for s in build_curation_stages(CurateConfig())] == ["quality", "pii", "dedup_exact", "dedup_near"]
    off = CurateConfig(quality_filters=False, pii=False, exact_dedup=False, near_dedup=False)
    assert build_curation_stages(off) == []


def test_config_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="extra"):
        CurateConfig.model_validate({"near": {"n_gram": 5}})
