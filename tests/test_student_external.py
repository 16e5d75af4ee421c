"""The external-trainer hook: a command template, streamed, failing with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthloop.errors import InputError
from synthloop.student.config import StudentConfig
from synthloop.student.external import render_command, run_external
from synthloop.student.train import COMPLETE


def test_the_command_runs_with_quoted_paths_and_marks_the_checkpoint_complete(tmp_path: Path) -> None:
    mix = tmp_path / "my mix.jsonl"
    mix.write_text('{"messages": []}\n')
    cfg = StudentConfig(external_command="""sh -c 'echo training on "$0"; cp "$0" "$1/seen.jsonl"' {mix} {output_dir}""")
    out = run_external(cfg, mix, tmp_path / "round 0")
    assert (out / "seen.jsonl").read_text() == mix.read_text()
    assert (out / COMPLETE).is_file()
    (out / "seen.jsonl").unlink()
    run_external(cfg, mix, out)  # complete: not run again
    assert not (out / "seen.jsonl").exists()


def test_a_failing_command_is_one_line_naming_it_and_its_exit_code(tmp_path: Path) -> None:
    cfg = StudentConfig(external_command="sh -c 'exit 3' {mix} {output_dir}")
    with pytest.raises(InputError, match=r"external trainer `sh -c 'exit 3' .*` exited with code 3") as e:
        run_external(cfg, tmp_path / "m.jsonl", tmp_path / "out")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out" / COMPLETE).exists()


def test_a_missing_program_and_a_bad_placeholder_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="could not start 'no-such-trainer-xyz'"):
        run_external(StudentConfig(external_command="no-such-trainer-xyz {mix} {output_dir}"), tmp_path / "m", tmp_path / "o")
    with pytest.raises(InputError, match="unknown placeholder"):
        render_command("t {mix} {output_dir} {gpus}", mix=Path("m"), base_model="b", output_dir=Path("o"))
    assert render_command("t --base {base_model} {mix} {output_dir}", mix=Path("a b"), base_model="x",
                          output_dir=Path("o")) == ["t", "--base", "x", "a b", "o"]


def test_train_round_dispatches_to_the_command_and_its_model_dir_is_served_as_is(tmp_path: Path) -> None:
    from synthloop.student.train import merged_dir, train_round

    mix = tmp_path / "m.jsonl"
    mix.write_text("{}\n")
    cfg = StudentConfig(external_command="""sh -c 'echo "{{}}" > "$1/config.json"' {mix} {output_dir}""")
    out = train_round(cfg, mix, tmp_path / "r0")
    assert merged_dir(out) == out
    bare = StudentConfig(external_command="true {mix} {output_dir}")
    with pytest.raises(InputError, match="neither a model"):
        merged_dir(train_round(bare, mix, tmp_path / "r1"))
