"""Golden-set loaders (JSONL, CSV, Parquet, saved HF dataset), bad-row reports and the held-out split."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synthloop.errors import InputError
from synthloop.grounding import (
    FieldMapping,
    GoldenSet,
    GroundingConfig,
    golden_texts,
    is_heldout,
    load_golden,
    load_golden_file,
)
from synthloop.records import GOLDEN, Record

TEXT = FieldMapping(text_field="body", topic_field="topic")
PAIR = FieldMapping(prompt_field="q", response_field="a", skill_field="skill")


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_rows_become_golden_records_and_bad_lines_are_reported(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "g.jsonl", [
        json.dumps({"body": "A deque is a double-ended queue.", "topic": "collections", "url": "u1"}),
        "{not json",
        json.dumps({"topic": "re"}),
        "",
        json.dumps({"body": "   ", "topic": "re"}),
        json.dumps(["a", "list"]),
        json.dumps({"body": 3}),
        json.dumps({"body": "A deque is a double-ended queue.", "topic": "other"}),
        json.dumps({"body": "re.sub replaces matches.", "topic": "re"}),
    ])
    g = load_golden_file(path, TEXT, heldout_fraction=0.0)
    rows = g.train
    assert [r.text for r in rows] == ["A deque is a double-ended queue.", "re.sub replaces matches."]
    first = rows[0]
    assert (first.source, first.topic, first.status, first.task) == (GOLDEN, "collections", "accepted", "golden")
    assert first.meta == {"url": "u1"}  # unmapped columns are kept
    assert first.id.startswith("golden:")
    bad = {b.position: b.reason for b in g.report.bad_rows}
    assert set(bad) == {f"{path}:{n}" for n in (2, 3, 5, 6, 7, 8)}
    assert bad[f"{path}:2"].startswith("not valid JSON")
    assert bad[f"{path}:3"].startswith("missing column 'body'")
    assert bad[f"{path}:5"] == "column 'body' is empty"
    assert bad[f"{path}:6"] == "not a JSON object (got list)"
    assert bad[f"{path}:7"] == "column 'body' is not text (got int)"
    assert bad[f"{path}:8"] == f"duplicate of {path}:1 (same content)"
    assert (g.report.rows_read, g.report.loaded) == (8, 2)
    assert "loaded 2 of 8 rows" in g.report.summary()


def test_gzipped_jsonl_with_messages_and_user_ids(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl.gz"
    good = {"uid": 7, "conv": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    no_answer = {"uid": 8, "conv": [{"role": "user", "content": "hi"}]}
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(good) + "\n" + json.dumps(no_answer) + "\n" + json.dumps({"conv": good["conv"]}) + "\n")
    g = load_golden_file(path, FieldMapping(messages_field="conv", id_field="uid"), heldout_fraction=0.0)
    assert [r.id for r in g.train] == ["golden:7"]
    assert g.train[0].messages == good["conv"]
    reasons = [b.reason for b in g.report.bad_rows]
    assert reasons == ["column 'conv' has no non-empty assistant message to learn from",
                       "missing id column 'uid' (row has: conv)"]


def test_csv_prompt_response_pairs_with_multiline_cells_keep_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "g.csv"
    path.write_text('q,a,skill\n"What is\na tuple?",An immutable sequence.,basics\n'
                    'extra,cells,here,oops\nshort\n"Why?",,basics\nWhat is a set?,A collection.,\n',
                    encoding="utf-8")
    g = load_golden_file(path, PAIR, heldout_fraction=0.0)
    assert [r.messages for r in g.train] == [
        [{"role": "user", "content": "What is\na tuple?"}, {"role": "assistant", "content": "An immutable sequence."}],
        [{"role": "user", "content": "What is a set?"}, {"role": "assistant", "content": "A collection."}],
    ]
    assert [r.skill for r in g.train] == ["basics", ""]
    assert [(b.position, b.reason) for b in g.report.bad_rows] == [
        (f"{path}:4", "more cells than the 3 header columns (quote cells holding commas)"),
        (f"{path}:5", "fewer cells than the 3 header columns"),
        (f"{path}:6", "column 'a' is empty"),
    ]


def test_parquet_rows_are_reported_by_row_index(tmp_path: Path) -> None:
    path = tmp_path / "g.parquet"
    table = pa.table({"body": ["first text", None, "third text"], "topic": ["a", "b", None]})
    pq.write_table(table, path)
    g = load_golden_file(path, TEXT, heldout_fraction=0.0)
    assert [(r.text, r.topic) for r in g.train] == [("first text", "a"), ("third text", "")]
    assert [(b.position, b.reason) for b in g.report.bad_rows] == [(f"{path} row 1", "column 'body' is empty")]


def test_saved_hf_dataset_directory_with_splits(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"body": ["one text", ""], "topic": ["x", "y"]}),
        "test": datasets.Dataset.from_dict({"body": ["two text"], "topic": ["z"]}),
    })
    dd.save_to_disk(str(tmp_path / "ds"))
    cfg = GroundingConfig(golden=str(tmp_path / "ds"), text_field="body", topic_field="topic", heldout_fraction=0.0)
    g = load_golden(cfg)
    assert sorted(r.text for r in g.train) == ["one text", "two text"]
    assert [(b.position, b.reason) for b in g.report.bad_rows] == [(f"{tmp_path / 'ds'}[train] row 1",
                                                                     "column 'body' is empty")]


def test_nothing_usable_is_an_input_error_that_shows_the_reasons(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "g.jsonl", [json.dumps({"text": "wrong column"})] * 2)
    with pytest.raises(InputError, match=r"no usable row: loaded 0 of 2 .*missing column 'body'"):
        load_golden_file(path, TEXT)


@pytest.mark.parametrize("name, match", [("missing.jsonl", "golden set not found"),
                                         ("g.txt", "set grounding.format"),
                                         ("g.parquet", "not a readable Parquet file")])
def test_missing_file_or_unknown_format_says_what_to_do(tmp_path: Path, name: str, match: str) -> None:
    if name != "missing.jsonl":
        (tmp_path / name).write_text("not really this format", encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_golden_file(tmp_path / name, TEXT)


def _records(n: int, start: int = 0) -> list[Record]:
    return [Record(id=f"golden:r{i}", source=GOLDEN, text=f"row {i}") for i in range(start, start + n)]


def test_heldout_split_is_fixed_by_seed_and_stable_when_rows_are_added() -> None:
    small = GoldenSet.split("g", _records(400), heldout_fraction=0.2, heldout_seed=3)
    again = GoldenSet.split("g", _records(400), heldout_fraction=0.2, heldout_seed=3)
    grown = GoldenSet.split("g", _records(1000), heldout_fraction=0.2, heldout_seed=3)
    other_seed = GoldenSet.split("g", _records(400), heldout_fraction=0.2, heldout_seed=4)
    assert small.heldout_ids == again.heldout_ids
    assert small.heldout_ids <= grown.heldout_ids  # no old row changed sides
    assert {r.id for r in small.train} <= {r.id for r in grown.train}
    assert small.heldout_ids != other_seed.heldout_ids
    assert 0.14 < len(grown.heldout) / len(grown) < 0.26
    assert not small.heldout_ids & {r.id for r in small.train}
    assert all(is_heldout(i, 0.2, 3) for i in small.heldout_ids)


def test_a_golden_set_cannot_hold_a_row_on_both_sides() -> None:
    rows = _records(2)
    with pytest.raises(ValueError, match="in both train and heldout"):
        GoldenSet("g", (rows[0],), (rows[0],), 0.5, 0, GoldenSet.split("g", rows).report)


def test_content_ids_do_not_depend_on_position(tmp_path: Path) -> None:
    lines = [json.dumps({"body": f"text number {i}"}) for i in range(5)]
    a = load_golden_file(_write_jsonl(tmp_path / "a.jsonl", lines), TEXT, heldout_fraction=0.0)
    b = load_golden_file(_write_jsonl(tmp_path / "b.jsonl", lines[::-1]), TEXT, heldout_fraction=0.0)
    assert {r.id: r.text for r in a.train} == {r.id: r.text for r in b.train}


def test_golden_texts_covers_heldout_by_default() -> None:
    g = GoldenSet.split("g", _records(50), heldout_fraction=0.3, heldout_seed=1)
    assert sorted(golden_texts(g)) == sorted(f"row {i}" for i in range(50))
    assert len(golden_texts(g, "train")) == len(g.train) and len(golden_texts(g, "heldout")) == len(g.heldout)
