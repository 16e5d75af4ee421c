"""Human review without a browser: decisions as an append-only overlay, undo, publish with the
decisions applied (and the card's counts), agreement statistics, Argilla / Label Studio round
trips, the calibration set, the app's JSON API, and hostile record text escaped in report.html."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthloop.backends.fake import FakeBackend, canned_responders
from synthloop.cli import main
from synthloop.recipe import recipe_from_dict
from synthloop.review import Filters, Review, cohen_kappa, krippendorff_alpha, review_states
from synthloop.review import interchange
from synthloop.review.demo import HOSTILE_TOPIC, varied_judgement
from synthloop.rounds import run
from synthloop.storage import RunDir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small real run (fake backend): a judge with varied scores, so some records are rejected."""
    root = tmp_path_factory.mktemp("review")
    recipe = recipe_from_dict({
        "name": "rev", "seed": 3,
        "plan": {"topics": ["itertools", HOSTILE_TOPIC], "skills": ["explain", "debug"], "personas": ["a beginner"],
                 "tasks": ["instruction", "textbook"], "max_records": 24},
        "teacher": {"backend": "fake", "model": "fake-teacher"}, "judge": {"enabled": True, "min_score": 3},
        "curate": {"near_dedup": False}, "output": {"shard_size": 6, "runs_dir": str(root / "runs")},
    })
    result = run(recipe, backend=FakeBackend(responders={**canned_responders(), "judge:": varied_judgement}))
    assert result.accepted > 0 and result.rejected > 0
    return result.run_dir


@pytest.fixture
def fresh(run_dir: Path, tmp_path: Path) -> RunDir:
    """A copy of the run per test, so decisions never leak between tests."""
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst, ignore=shutil.ignore_patterns("review"))
    return RunDir(dst)


def ids(rd: RunDir, kind: str) -> list[str]:
    return [r.id for r in rd.records(kind)]  # type: ignore[arg-type]


def train_ids(rd: RunDir) -> list[str]:
    return [json.loads(line)["id"] for line in (rd.export_dir / "train.jsonl").read_text().splitlines()]


def test_decisions_never_touch_the_shards_and_publish_applies_them(fresh: RunDir) -> None:
    before = {p.name: p.read_bytes() for k in ("accepted", "rejected") for p in fresh.shards(k)}  # type: ignore[arg-type]
    acc, rej = ids(fresh, "accepted"), ids(fresh, "rejected")
    rv = Review(fresh, reviewer="ann")
    rv.decide([acc[0]], "reject", reason="wrong answer")
    rv.decide([rej[0]], "accept")
    rv.decide([acc[1]], "edit", edits={"messages.1.content": "A better answer."})
    rv.decide([acc[2]], "accept")  # confirms the pipeline
    assert main(["publish", str(fresh.path)]) == 0
    assert {p.name: p.read_bytes() for k in ("accepted", "rejected") for p in fresh.shards(k)} == before  # type: ignore[arg-type]
    out = train_ids(fresh)
    assert acc[0] not in out and rej[0] in out and len(out) == len(acc)
    rows = {json.loads(line)["id"]: json.loads(line) for line in (fresh.export_dir / "train.jsonl").read_text().splitlines()}
    assert rows[acc[1]]["messages"][1]["content"] == "A better answer."
    assert rows[acc[1]]["human_review"]["edited"] is True and rows[rej[0]]["human_review"]["label"] == "accepted"
    card = fresh.card_path.read_text()
    assert "## Human review" in card and "| 1 | 1 | 1 | 1 | 0 |" in card
    assert "human_accepted: 1" in card and "human_rejected: 1" in card
    log = [json.loads(line) for line in (fresh.path / "review" / "decisions.jsonl").read_text().splitlines()]
    assert [d["action"] for d in log] == ["reject", "accept", "edit", "accept"]
    assert log[0]["reviewer"] == "ann" and log[0]["before"]["label"] is None and log[0]["after"]["label"] == "rejected"
    assert log[2]["before"] == {"messages.1.content": rows[acc[1]]["messages"][1]["content"]} or log[2]["before"]["messages.1.content"] != "A better answer."


def test_a_run_without_decisions_publishes_as_before(fresh: RunDir) -> None:
    assert main(["publish", str(fresh.path)]) == 0
    assert train_ids(fresh) == ids(fresh, "accepted")
    assert "Human review" not in fresh.card_path.read_text()
    assert all("human_review" not in json.loads(line) for line in (fresh.export_dir / "train.jsonl").read_text().splitlines())


def test_bulk_is_undone_and_the_log_replays_after_a_restart(fresh: RunDir) -> None:
    rv = Review(fresh, reviewer="ann")
    batch, n = rv.bulk(Filters(kind="accepted"), "reject", reason="bulk: off topic")
    assert n == len(ids(fresh, "accepted")) and rv.index.page(Filters(reviewed="rejected"))[0] == n
    assert rv.undo() == (batch, n)
    assert rv.index.page(Filters(reviewed="yes"))[0] == 0
    rv.decide([ids(fresh, "rejected")[0]], "flag")
    again = Review(fresh, reviewer="bob")  # a new session replays the log
    assert again.index.page(Filters(reviewed="rejected"))[0] == 0
    assert again.index.page(Filters(reviewed="flagged"))[0] == 1
    assert sum(1 for _ in open(fresh.path / "review" / "decisions.jsonl")) == n + 2  # nothing erased: undo is appended


def test_filters_facets_and_full_text_search(fresh: RunDir) -> None:
    rv = Review(fresh)
    total = rv.index.count()
    assert total == len(ids(fresh, "accepted")) + len(ids(fresh, "rejected"))
    n_low, rows = rv.index.page(Filters(max_score=2))
    assert n_low > 0 and all(r["score"] <= 2 for r in rows) and all(r["kind"] == "rejected" for r in rows)
    assert rv.index.page(Filters(reason="judge_score_low"))[0] == n_low
    assert rv.index.page(Filters(topic="itertools"))[0] + rv.index.page(Filters(topic=HOSTILE_TOPIC))[0] == total
    n_q, hits = rv.index.page(Filters(q="documentation REPL"))
    assert n_q == rv.index.page(Filters(task="instruction"))[0] > 0 and hits  # every canned instruction answer says so
    assert rv.index.page(Filters(q="nosuchwordanywhere"))[0] == 0
    assert {k for k, _ in rv.index.facets()["skill"]} == {"explain", "debug"}


def test_agreement_statistics() -> None:
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "a", "b", "b"]) == pytest.approx(1.0)
    assert cohen_kappa(["a", "b", "a", "b"], ["b", "a", "b", "a"]) == pytest.approx(-1.0)
    # Krippendorff's worked example (4 observers, 12 units, nominal, missing values): alpha = 0.743
    units = [[1, 1, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4], [4, 4, 4, 4],
             [1, 1, 2, 1], [2, 2, 2, 2], [5, 5, 5], [1, 1], [3]]
    assert krippendorff_alpha(units) == pytest.approx(0.743, abs=1e-3)
    assert cohen_kappa(["a"], ["a"]) is None


def test_judge_vs_human_and_between_reviewers(fresh: RunDir) -> None:
    rv = Review(fresh, reviewer="ann")
    acc, rej = ids(fresh, "accepted"), ids(fresh, "rejected")
    rv.decide(acc[:3], "accept")
    rv.decide(rej[:2], "reject", reason="agree")
    rv.decide([rej[2]], "accept")  # disagrees with the judge
    a = rv.agreement()
    overall = a["judge"]["all"][0]
    assert overall["n"] == 6 and overall["accuracy"] == pytest.approx(5 / 6)
    assert {g["group"] for g in a["judge"]["rubric"]} <= {"instruction", "textbook"} and {g["group"] for g in a["judge"]["skill"]} <= {"explain", "debug"}
    rv.decide(acc[:2], "accept", reviewer="bob")
    rv.decide([acc[2]], "reject", reason="no", reviewer="bob")
    r = rv.agreement()["reviewers"]
    assert r["double_reviewed"] == 3 and r["reviewers"] == ["ann", "bob"] and r["raw_agreement"] == pytest.approx(2 / 3)


def test_calibration_set_and_interchange_round_trip(fresh: RunDir, tmp_path: Path) -> None:
    rv = Review(fresh, reviewer="ann")
    acc, rej = ids(fresh, "accepted"), ids(fresh, "rejected")
    rv.decide([acc[0]], "accept")
    rv.decide([rej[0]], "reject", reason="bad")
    cal = tmp_path / "cal.jsonl"
    assert main(["review", str(fresh.path), "--export-calibration", str(cal)]) == 0
    rows = [json.loads(line) for line in cal.read_text().splitlines()]
    assert sorted(r["label"] for r in rows) == ["bad", "good"] and all(r["task"] in ("instruction", "textbook") and r["text"] for r in rows)
    for fmt in interchange.FORMATS:
        out = tmp_path / f"{fmt}.json"
        assert interchange.export(rv, fmt, out) == rv.index.count()
        other = RunDir(tmp_path / f"copy-{fmt}")
        import shutil

        shutil.copytree(fresh.path, other.path, ignore=shutil.ignore_patterns("review"))
        imported = Review(other, reviewer="importer")
        assert interchange.import_answers(imported, out, source=fmt) == 2
        states = review_states(other) or {}
        assert states[acc[0]].label == "accepted" and states[rej[0]].label == "rejected" and states[rej[0]].reason == "bad"
        assert states[acc[0]].reviewer == "ann"


def test_the_json_api(fresh: RunDir) -> None:
    from starlette.testclient import TestClient

    from synthloop.review.app import create_app

    client = TestClient(create_app(Review(fresh, reviewer="ann")))
    assert "default-src 'self'" in client.get("/").headers["content-security-policy"]
    meta = client.get("/api/meta").json()
    assert meta["name"] == "rev" and meta["total"] > 0
    page = client.get("/api/records", params={"kind": "rejected", "limit": 5}).json()
    rid = page["rows"][0]["id"]
    view = client.get(f"/api/record/{rid}").json()
    assert view["record"]["verdicts"] and view["lineage"]["teacher"] == "fake:fake-teacher"
    assert client.post("/api/decide", json={"ids": [rid], "action": "reject"}).status_code == 400  # needs a reason
    assert client.post("/api/decide", json={"ids": [rid], "action": "accept"}).json()["count"] == 1
    bulk = client.post("/api/bulk", json={"filters": {"kind": "rejected"}, "action": "flag"}).json()
    assert bulk["count"] == page["total"]
    assert client.post("/api/undo", json={}).json()["count"] == page["total"]
    assert client.get("/api/records", params={"reviewed": "accepted"}).json()["total"] == 1


def test_report_has_plots_and_samples_and_escapes_record_text(fresh: RunDir) -> None:
    assert main(["publish", str(fresh.path)]) == 0
    report = fresh.report_path.read_text()
    assert report.count("<svg") >= 3 and "Sample records" in report
    assert "<script" not in report and "onerror=alert" not in report.replace("onerror=alert(1)&gt;", "")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in report
    assert pq.read_table(fresh.shards("accepted")[0]).num_rows > 0


def test_band_strings_of_every_form() -> None:
    from synthloop.reports.plots import parse_band

    assert parse_band(">= 0.8") == (0.8, None) and parse_band("<= 2") == (None, 2.0)
    assert parse_band("0.75..1.5") == (0.75, 1.5) and parse_band([0.8, 1.4]) == (0.8, 1.4)
    assert parse_band("n/a") is None and parse_band(None) is None
