"""The external-trainer hook: `student.external_command` runs instead of the built-in trainer, for
real scale (TRL, axolotl, a GPU cluster's submit script).

The template's `{mix}`, `{base_model}` and `{output_dir}` are filled with shell-quoted paths, the
command is split with shlex and run without a shell, its output is streamed line by line to the
log, and the round's checkpoint counts as complete only when the command exits 0 (the same
`COMPLETE` marker the built-in trainer writes last, so resume works the same way).
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import time
from pathlib import Path

from synthloop.errors import InputError
from synthloop.student.config import StudentConfig
from synthloop.student.train import COMPLETE, TRAIN_JSON

log = logging.getLogger("synthloop.student")


def render_command(template: str, *, mix: Path, base_model: str, output_dir: Path) -> list[str]:
    """The argv the template describes, each placeholder one (quoted) argument."""
    try:
        line = template.format(mix=shlex.quote(str(mix)), base_model=shlex.quote(base_model),
                               output_dir=shlex.quote(str(output_dir)))
    except (KeyError, IndexError) as e:
        raise InputError(f"student.external_command has an unknown placeholder {e}: use {{mix}}, {{base_model}} "
                         "and {output_dir} (double other braces: {{ }})") from None
    return shlex.split(line)


def run_external(cfg: StudentConfig, mix: str | Path, output_dir: str | Path) -> Path:
    """Run the external trainer for one round; return `output_dir` once its checkpoint is complete."""
    if cfg.external_command is None:
        raise InputError("student.external_command is not set: set it, or use the built-in trainer (train.train)")
    out, mix = Path(output_dir), Path(mix)
    if (out / COMPLETE).is_file():
        log.info("external checkpoint %s is complete; not retraining", out)
        return out
    out.mkdir(parents=True, exist_ok=True)
    argv = render_command(cfg.external_command, mix=mix, base_model=cfg.base_model, output_dir=out)
    began = time.monotonic()
    _stream(argv)
    record = {"command": argv, "mix": str(mix), "base_model": cfg.base_model, "seed": cfg.seed,
              "seconds": round(time.monotonic() - began, 2), "external": True}
    (out / TRAIN_JSON).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (out / COMPLETE).write_text("external\n", encoding="utf-8")
    return out


def _stream(argv: list[str]) -> None:
    """Run argv, logging each output line as it comes; a non-zero exit is one InputError line."""
    try:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    except OSError as e:
        raise InputError(f"student.external_command could not start {argv[0]!r}: {e.strerror} (check the program name and PATH)") from None
    assert proc.stdout is not None
    for line in proc.stdout:
        log.info("[trainer] %s", line.rstrip())
    code = proc.wait()
    if code != 0:
        raise InputError(f"external trainer `{shlex.join(argv)}` exited with code {code}: see its output above")


__all__ = ["render_command", "run_external"]
