"""LLMJudge: forgiving parsing, strict range, rubrics, batching through the real client + fake."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from synthloop.backends.base import Request, Response
from synthloop.backends.client import Client, ParseFailure
from synthloop.backends.fake import FakeBackend
from synthloop.errors import BadResponse, VerifierError
from synthloop.pipeline.context import RunContext
from synthloop.pipeline.stage import VerifierStage
from synthloop.records import Record
from synthloop.verifiers import LLMJudge, load_rubric, parse_judgement
from synthloop.verifiers.judge import BUILTIN_RUBRICS, fake_judgement


def judged(text: str) -> tuple[float, str]:
    j = parse_judgement(Response(text=text))
    return j.score, j.reason


def judging_backend() -> FakeBackend:
    """A fake backend that answers judge requests with the canned judgement (its own responders:
    nothing is registered process-wide)."""
    return FakeBackend(responders={"judge:": fake_judgement})


@pytest.mark.parametrize(
    ("text", "score", "reason"),
    [
        ("Score: 4\nReason: Clear and correct.", 4, "Clear and correct."),
        ("**Score:** 4\n**Reason:** Clear.", 4, "Clear."),
        ("score 4/5 - reason: fine", 4, "fine"),
        ("Score: 5 out of 5\nReason: Excellent.", 5, "Excellent."),
        ("## Rating: 3.5\nJustification: thin", 3.5, "thin"),
        ("Score (1-5): 2\nReason: has an error", 2, "has an error"),
        ("4\nThe explanation is good.", 4, "The explanation is good."),
        ("3 - acceptable but thin", 3, "acceptable but thin"),
        ("I would give this 4/5 because it is clear.", 4, "because it is clear."),
        ("Score: 1", 1, "(no reason given)"),
    ],
)
def test_parser_is_forgiving_about_form(text: str, score: float, reason: str) -> None:
    assert judged(text) == (score, reason)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Score: 7\nReason: great", "outside the 1-5 scale"),
        ("Score: 0", "outside the 1-5 scale"),
        ("Score: 8/10", "not on the 1-5 scale"),
        ("Score: N\nReason: ...", "no score found"),
        ("This is a well written lesson.", "no score found"),
        ("1. The explanation\n2. The code", "no score found"),
        ("", "no score found"),
    ],
)
def test_parser_is_strict_about_range_and_presence(text: str, message: str) -> None:
    with pytest.raises(ParseFailure, match=message):
        parse_judgement(Response(text=text))


def test_long_reasons_are_capped() -> None:
    _, reason = judged("Score: 4\nReason: " + "word " * 200)
    assert len(reason) <= 303 and reason.endswith("...")


def test_builtin_rubrics_state_the_output_format() -> None:
    for name in BUILTIN_RUBRICS:
        rubric = load_rubric(name)
        assert rubric.name == name
        assert "Score: N\nReason:" in rubric.text and "5:" in rubric.text and "1:" in rubric.text


def test_rubric_by_path_and_unknown_rubric(tmp_path: Path) -> None:
    path = tmp_path / "house_style.md"
    path.write_text("Grade for house style.\nScore: N\nReason: ...")
    assert load_rubric(path).name == "house_style"
    assert load_rubric(str(path)).text.startswith("Grade for house style")
    with pytest.raises(VerifierError, match="instruction, refusal, safety, textbook"):
        load_rubric("no-such-rubric")


def test_min_score_above_the_scale_is_refused() -> None:
    with pytest.raises(VerifierError, match="nothing could pass"):
        LLMJudge(Client(FakeBackend()), min_score=6)


def test_batch_goes_through_the_client_in_one_call() -> None:
    backend = FakeBackend(responder=lambda r: "Score: 5\nReason: good", batch_size=8)
    judge = LLMJudge(Client(backend), rubric="instruction", model="judge-model")
    records = [Record(id=str(i), messages=[{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]) for i in range(5)]
    verdicts = asyncio.run(judge.verify_batch(records))
    assert [v.score for v in verdicts] == [5.0] * 5
    assert all(v.ok and v.stage == "judge" and v.name == "judge" for v in verdicts)
    assert verdicts[0].reason == "judge_score: 5/5: good"
    assert backend.batches == [5]
    request = backend.calls[0]
    assert (request.tag, request.temperature, request.model) == ("judge:instruction", 0.0, "judge-model")
    assert request.messages[0] == ("system", load_rubric("instruction").text)
    assert "[user]\nq0\n\n[assistant]\na0" in request.messages[-1][1]


def test_low_score_is_a_rejection_with_the_judges_reason() -> None:
    judge = LLMJudge(Client(judging_backend()), min_score=3)
    good, low = judge.verify(Record(id="a", text="fine")), judge.verify(Record(id="b", text="LOW-QUALITY text"))
    assert (good.ok, good.score) == (True, 4.0)
    assert (low.ok, low.score) == (False, 2.0)
    assert low.reason == "judge_score_low: 2/5 < 3: The record is marked low quality and would teach little."


def test_unparseable_after_retries_is_a_verdict_not_a_crash() -> None:
    backend = FakeBackend(responder=lambda r: "What a lovely lesson!")
    judge = LLMJudge(Client(backend, max_parse_retries=2))
    verdict = judge.verify(Record(id="a", text="x"))
    assert not verdict.ok and verdict.score is None
    assert verdict.reason.startswith("judge_unparseable: no score found in 'What a lovely lesson!' after 3 attempts")
    assert [r.attempt for r in backend.calls] == [0, 1, 2]


def test_a_reask_can_rescue_a_bad_judgement() -> None:
    backend = FakeBackend(script=["Score: 9", "Score: 5\nReason: ok"])
    verdict = LLMJudge(Client(backend)).verify(Record(id="a", text="x"))
    assert (verdict.ok, verdict.score, verdict.reason) == (True, 5.0, "judge_score: 5/5: ok")


def test_backend_failure_is_a_verdict() -> None:
    backend = FakeBackend(responder=lambda r: BadResponse("400: context too long"))
    verdict = LLMJudge(Client(backend)).verify(Record(id="a", text="x"))
    assert not verdict.ok
    assert verdict.reason == "judge_backend_error: BadResponse: 400: context too long"


def test_verify_inside_an_event_loop_says_to_await() -> None:
    judge = LLMJudge(Client(FakeBackend()))

    async def call() -> None:
        judge.verify(Record(id="a", text="x"))

    with pytest.raises(VerifierError, match="verify_batch"):
        asyncio.run(call())


def test_long_records_are_truncated_in_the_prompt() -> None:
    judge = LLMJudge(Client(FakeBackend()), max_chars=100)
    prompt = judge.request(Record(id="a", text="y" * 5000)).messages[-1][1]
    assert "y" * 100 + "\n...[truncated]" in prompt and "y" * 101 not in prompt


def test_fake_judgement_looks_only_at_the_judged_record() -> None:
    judge = LLMJudge(Client(FakeBackend()))
    request = judge.request(Record(id="a", text="plain"))
    assert fake_judgement(request).startswith("Score: 4")
    tricky = Request.chat([{"role": "user", "content": "LOW-QUALITY outside the markers"}], model="m")
    assert fake_judgement(tricky).startswith("Score: 2")  # no markers: the whole prompt is the record


def test_judge_in_a_verifier_stage_counts_categories() -> None:
    ctx = RunContext()
    stage = VerifierStage(LLMJudge(Client(judging_backend())), stage="judge")
    records = [Record(id="a", text="good"), Record(id="b", text="LOW-QUALITY")]
    assert [r.id for r in stage.run(records, ctx)] == ["a"]
    assert dict(ctx.stats["judge:judge"].reasons) == {"judge_score_low": 1}


def test_rubric_examples_are_sent_as_earlier_turns() -> None:
    judge = LLMJudge(Client(FakeBackend()), rubric="textbook")
    roles = [role for role, _ in judge.request(Record(id="a", text="lesson")).messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    demos = [content for role, content in judge.request(Record(id="a", text="z")).messages if role == "assistant"]
    assert all(parse_judgement(Response(d)).score in (2.0, 5.0) for d in demos)
