"""Teacher tasks. A new task is one file, one entry in `TASKS`, one test."""

from __future__ import annotations

from synthloop.tasks.base import Task
from synthloop.tasks.instruction import InstructionTask, fake_instruction
from synthloop.tasks.textbook import TextbookTask, fake_exercise, fake_explanation

TASKS: dict[str, type[Task]] = {"textbook": TextbookTask, "instruction": InstructionTask}


def get_task(name: str) -> Task:
    return TASKS[name]()


def register_fake_answers() -> None:
    """Teach the fake backend well-formed answers for every task template."""
    from synthloop.backends.fake import register_responder

    register_responder("textbook:textbook_explanation", fake_explanation)
    register_responder("textbook:textbook_exercise", fake_exercise)
    register_responder("instruction:instruction", fake_instruction)


__all__ = ["TASKS", "Task", "get_task", "register_fake_answers"]
