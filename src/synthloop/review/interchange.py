"""Export to, and import from, Argilla's and Label Studio's JSON formats (files only; no server).

Argilla (2.x record dicts, as `rg.Record.to_dict()` writes them): one record per synthloop record,
    {"id", "fields": {"conversation", "task", "topic", "skill"}, "metadata": {...},
     "suggestions": {"label": {"value": "good"|"bad", "score": judge score, "agent": "synthloop-judge"}},
     "responses": {"label": [{"value": "good"|"bad", "user_id": reviewer}], "reason": [...]},
     "status": "completed"|"pending"}
  for a dataset with a LabelQuestion `label` (good, bad) and a TextQuestion `reason`.
Label Studio (task JSON, as its import and export use): a list of
    {"id", "data": {"record_id", "conversation", ...},
     "annotations": [{"completed_by", "created_at", "result": [{"from_name": "label", "to_name":
       "conversation", "type": "choices", "value": {"choices": ["good"]}}, {... "reason" textarea}]}],
     "predictions": [{"model_version": "synthloop-judge", "score", "result": [...]}]}
  for a labelling config with `<Choices name="label" toName="conversation">` (good, bad) and a
  `<TextArea name="reason">`.

Import reads the human answers of either format back as decisions (source `argilla` or
`label-studio`, reviewer from the user id), appended to the run's log like any other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from synthloop.errors import StorageError
from synthloop.records import Record
from synthloop.review.decisions import Decision, ReviewState
from synthloop.review.session import Review
from synthloop.storage import atomic_write_text

FORMATS = ("argilla", "label-studio")
JUDGE_AGENT = "synthloop-judge"


def _conversation(rec: Record) -> str:
    from synthloop.verifiers.judge import record_for_judging

    return record_for_judging(rec, 100_000)


def _judge(rec: Record) -> tuple[str | None, float | None]:
    v = next((v for v in rec.verdicts if v.name == "judge"), None)
    if v is None:
        return None, None
    return ("good" if v.ok else "bad"), v.score


def _good_bad(label: str | None) -> str | None:
    return None if label is None else ("good" if label == "accepted" else "bad")


def to_argilla(rec: Record, s: ReviewState | None) -> dict[str, Any]:
    judge_label, score = _judge(rec)
    responses: dict[str, list[dict[str, Any]]] = {}
    if s is not None and s.labels:
        responses["label"] = [{"value": _good_bad(lab), "user_id": who} for who, lab in s.labels.items()]
        if s.reason:
            responses["reason"] = [{"value": s.reason, "user_id": s.reviewer}]
    return {
        "id": rec.id,
        "fields": {"conversation": _conversation(rec), "task": rec.task, "topic": rec.topic, "skill": rec.skill},
        "metadata": {"round": rec.round, "persona": rec.persona, "status": rec.status, "rejected_stage": rec.rejected_stage,
                     "rejected_reason": rec.rejected_reason, "teacher": f"{rec.teacher.backend}:{rec.teacher.model}"},
        "suggestions": {} if judge_label is None else {"label": {"value": judge_label, "score": score, "agent": JUDGE_AGENT}},
        "responses": responses,
        "vectors": {},
        "status": "completed" if responses else "pending",
    }


def to_label_studio(rec: Record, s: ReviewState | None) -> dict[str, Any]:
    judge_label, score = _judge(rec)
    annotations = []
    for who, lab in (s.labels.items() if s is not None else []):
        result: list[dict[str, Any]] = [_ls_choice(_good_bad(lab) or "")]
        if s is not None and s.reason and who == s.reviewer:
            result.append({"from_name": "reason", "to_name": "conversation", "type": "textarea", "value": {"text": [s.reason]}})
        annotations.append({"completed_by": who, "result": result})
    predictions = [] if judge_label is None else [{"model_version": JUDGE_AGENT, "score": score, "result": [_ls_choice(judge_label)]}]
    return {
        "data": {"record_id": rec.id, "conversation": _conversation(rec), "task": rec.task, "topic": rec.topic,
                 "skill": rec.skill, "round": rec.round, "status": rec.status},
        "annotations": annotations,
        "predictions": predictions,
    }


def _ls_choice(label: str) -> dict[str, Any]:
    return {"from_name": "label", "to_name": "conversation", "type": "choices", "value": {"choices": [label]}}


def export(review: Review, fmt: str, out: Path, records: Iterable[Record] | None = None) -> int:
    """Every record of the run (or `records`) in `fmt`, with the judge's suggestion and the human labels."""
    convert = {"argilla": to_argilla, "label-studio": to_label_studio}.get(fmt)
    if convert is None:
        raise StorageError(f"unknown interchange format {fmt!r}; use one of {', '.join(FORMATS)}")
    if records is None:
        records = (r for kind in ("accepted", "rejected") for r in review.rd.records(kind))
    rows = [convert(r, review.state(r.id)) for r in records]
    atomic_write_text(Path(out), json.dumps(rows, ensure_ascii=False, indent=1))
    return len(rows)


def read_answers(path: Path) -> Iterator[tuple[str, str, str, str]]:
    """(record_id, reviewer, "accept"|"reject", reason) for every human answer in an Argilla or
    Label Studio file (the format is told apart by its keys)."""
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise StorageError(f"cannot read {path} ({e}); pass an Argilla or Label Studio JSON export") from None
    if isinstance(rows, dict):
        rows = rows.get("records") or rows.get("tasks") or [rows]
    for row in rows:
        if "data" in row:
            yield from _ls_answers(row)
        elif "fields" in row or "responses" in row:
            yield from _argilla_answers(row)
        else:
            raise StorageError(f"{path}: a row with neither `data` (Label Studio) nor `fields` (Argilla); export it again from the tool")


def _action(value: Any) -> str | None:
    v = str(value[0] if isinstance(value, list) and value else value).strip().lower()
    return {"good": "accept", "accept": "accept", "accepted": "accept", "bad": "reject", "reject": "reject", "rejected": "reject"}.get(v)


def _argilla_answers(row: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    responses = row.get("responses") or {}
    if isinstance(responses, list):  # the flat list form: [{"question_name", "value", "user_id"}]
        grouped: dict[str, list[dict[str, Any]]] = {}
        for r in responses:
            grouped.setdefault(r.get("question_name", "label"), []).append(r)
        responses = grouped
    reasons = {str(r.get("user_id")): str(r.get("value", "")) for r in responses.get("reason") or []}
    for r in responses.get("label") or []:
        action = _action(r.get("value"))
        who = str(r.get("user_id") or "argilla")
        if action:
            yield str(row["id"]), who, action, reasons.get(who, "")


def _ls_answers(row: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    rid = str((row.get("data") or {}).get("record_id") or row.get("id"))
    for ann in row.get("annotations") or []:
        if ann.get("was_cancelled"):
            continue
        who = ann.get("completed_by")
        if isinstance(who, dict):
            who = who.get("email") or who.get("id")
        action, reason = None, ""
        for res in ann.get("result") or []:
            value = res.get("value") or {}
            if res.get("type") == "choices":
                action = _action(value.get("choices"))
            elif res.get("type") == "textarea":
                reason = " ".join(value.get("text") or [])
        if action:
            yield rid, str(who or "label-studio"), action, reason


def import_answers(review: Review, path: Path, source: str = "") -> int:
    """Append the file's human answers as decisions (one batch, so one undo reverts the import)."""
    answers = list(read_answers(path))
    known = [a for a in answers if review.index.locate(a[0]) is not None]
    if answers and not known:
        raise StorageError(f"none of the {len(answers)} answers in {path} names a record of {review.rd.path}; import into the run it was exported from")
    batch = ""
    n = 0
    for rid, who, action, reason in known:
        ds: list[Decision] = review.decide([rid], action, reason=reason or f"imported: {action}", batch=batch,
                                           source=source or "import", reviewer=who)
        batch = ds[0].batch
        n += 1
    return n


__all__ = ["FORMATS", "export", "import_answers", "read_answers", "to_argilla", "to_label_studio"]
