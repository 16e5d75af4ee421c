"""Instruction task: a question a persona would ask about the topic, and the answer."""

from __future__ import annotations

import re
from typing import Any

from synthloop.backends.base import Request, Response
from synthloop.backends.client import ParseFailure
from synthloop.records import Record
from synthloop.tasks.base import Task, register_task

_QA = re.compile(r"Question\s*:\s*(.+?)\n+\s*\**Answer\**\s*:\s*(.+)", re.S | re.I)


def parse_instruction(resp: Response) -> dict[str, str]:
    m = _QA.search(resp.text)
    if not m:
        raise ParseFailure("missing_sections: expected 'Question:' then 'Answer:'")
    question, answer = m.group(1).strip(), m.group(2).strip()
    if len(question) < 10 or len(answer) < 20:
        raise ParseFailure(f"too_short: question {len(question)} chars, answer {len(answer)} chars")
    return {"question": question, "answer": answer}


@register_task
class InstructionTask(Task):
    name = "instruction"
    template_ids = ("instruction",)

    def parsers(self) -> list[Any]:
        return [parse_instruction]

    def apply(self, record: Record, values: list[Any]) -> None:
        qa = values[0]
        # The question lives in the conversation only: `problem` is a practice problem's field,
        # which curation expects to come with step-by-step reasoning and a reference solution.
        record.text = qa["answer"]
        record.messages = [{"role": "user", "content": qa["question"]}, {"role": "assistant", "content": qa["answer"]}]


def fake_instruction(req: Request) -> str:
    return (
        f"Question: How do I use this feature well (case {req.seed % 997})?\n"
        "Answer: Read the documentation, try a small example in the REPL, then use it in your code."
    )


InstructionTask.fake_answers = {"instruction": fake_instruction}
