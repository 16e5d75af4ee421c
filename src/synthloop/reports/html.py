"""`report.html`: one self-contained page (no scripts, no network) built from the run directory:
the funnel, rejection reasons, judge scores, tokens and cost, the mix and the collapse indicators;
inline SVG plots (reports/plots.py) and a browsable sample of accepted and rejected records.
Everything taken from the data is HTML-escaped."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

from synthloop.reports.card import status_line
from synthloop.reports.funnel import Funnel
from synthloop.storage import Manifest, RunDir

CSS = """
body{font:14px/1.45 system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:10px;background:#4a7;vertical-align:middle}.bar.rej{background:#c55}
.ok{color:#272}.warn{color:#b70}.fail{color:#c22}.skipped{color:#888}
.note{background:#fff6d6;border:1px solid #eed37a;padding:.6em 1em}
.plots{display:flex;flex-wrap:wrap;gap:14px 22px}.plots figure{margin:0;width:460px}.plots figcaption{color:#556;font-size:12px;margin:.2em 0 .5em}
svg{max-width:100%;height:auto}
details.rec{border:1px solid #e4e6eb;border-radius:6px;margin:.35em 0;background:#fff}
details.rec summary{cursor:pointer;padding:.35em .7em;color:#334}
details.rec summary .tag{display:inline-block;font-size:11px;border-radius:9px;padding:0 7px;margin-right:6px;background:#d8f0e0;color:#1d6b3c}
details.rec summary .tag.rej{background:#f7dada;color:#a22}
details.rec pre{margin:0;padding:.6em .9em;white-space:pre-wrap;word-wrap:break-word;font:12px/1.5 ui-monospace,monospace;border-top:1px solid #eee}
details.rec .why{padding:.3em .9em;color:#a22;font-size:12px}
"""


def render_html(manifest: Manifest, recipe: dict[str, Any], f: Funnel, rd: RunDir, review: dict[str, int] | None = None) -> str:
    from synthloop.reports.plots import human_review_section, plots_section, samples_section

    teacher = recipe.get("teacher", {})
    parts = [
        f"<!doctype html><meta charset='utf-8'><title>{_e(manifest.name)} · synthloop report</title><style>{CSS}</style>",
        f"<h1>{_e(manifest.name)}</h1>",
        f"<p class='note'><b>Synthetic data.</b> Written by <code>{_e(teacher.get('backend'))}:{_e(teacher.get('model'))}</code> "
        "through synthloop; not human-written.</p>",
        _status(manifest),
        human_review_section(review),
        plots_section(manifest, recipe, f, rd),
        _rounds(manifest),
        _funnel(f),
        _reasons(f),
        _scores(f),
        _topics(f),
        _usage(f),
        _mix(manifest),
        _collapse_history(rd, manifest),
        _collapse(rd.path / "collapse" / "report.json"),
        samples_section(rd),
    ]
    return "\n".join(p for p in parts if p)


def _status(m: Manifest) -> str:
    return f"<p>Status: <b>{_e(status_line(m))}</b> · seed {m.seed} · recipe hash <code>{_e(m.recipe_hash)}</code></p>"


def _rounds(m: Manifest) -> str:
    if len(m.rounds) <= 1 and m.rounds_planned <= 1:
        return ""
    rows = []
    for s in m.rounds:
        published = m.published_round is not None and s.round <= m.published_round
        rows.append((str(s.round), _n(s.planned), _n(s.accepted), _n(s.rejected), _n((s.mix or {}).get("synthetic_rows", 0)),
                     _status_span(s.collapse.status if s.collapse else "skipped"), "yes" if published else "no"))
    return "<h2>Rounds</h2>" + _table(["round", "planned", "accepted", "rejected", "synthetic in mix", "collapse", "published"], rows)


class Markup(str):
    """HTML built here from escaped parts: a table cell puts it in as is. Any other cell value is
    escaped, so a topic or reason that starts with '<' shows as text."""


def _status_span(status: str) -> str:
    return Markup(f"<span class='{_e(status)}'>{_e(status)}</span>")


def _collapse_history(rd: RunDir, m: Manifest) -> str:
    """Each indicator's value round by round, with its status (from collapse/round-RRR.json)."""
    reports = [json.loads(p.read_text(encoding="utf-8")) for s in m.rounds if (p := rd.collapse_report_path(s.round)).is_file()]
    if len(reports) < 2:
        return ""
    names = list(reports[0].get("indicators") or {})
    head = ["indicator", *[f"round {r.get('round')}" for r in reports]]
    rows = []
    for name in names:
        cells = []
        for r in reports:
            ind = (r.get("indicators") or {}).get(name) or {}
            v = ind.get("value")
            cells.append(Markup(f"<span class='{_e(ind.get('status', 'skipped'))}'>{'—' if v is None else f'{v:.4g}'}</span>"))
        rows.append((name, *cells))
    return "<h2>Collapse indicators across rounds</h2>" + _table(head, rows)


def _funnel(f: Funnel) -> str:
    rows = [("planned", f.planned, ""), ("accepted", f.accepted, ""), ("rejected", f.rejected, "rej"), ("not yet done", f.pending, "rej")]
    return "<h2>Funnel</h2>" + _table(["", "records", ""], [(k, _n(v), _bar(v, f.planned, cls)) for k, v, cls in rows])


def _reasons(f: Funnel) -> str:
    if not f.by_reason:
        return ""
    rows = [(s, r, _n(n), _bar(n, f.rejected, "rej")) for (s, r), n in f.by_reason.most_common()]
    return "<h2>Rejections by stage and reason</h2>" + _table(["stage", "reason", "count", ""], rows)


def _scores(f: Funnel) -> str:
    if not f.judge_scores:
        return ""
    hist = Counter(int(round(s)) for s in f.judge_scores)
    rows = [(str(k), _n(hist.get(k, 0)), _bar(hist.get(k, 0), len(f.judge_scores), "")) for k in range(1, 6)]
    return "<h2>Judge scores</h2>" + _table(["score", "records", ""], rows)


def _topics(f: Funnel) -> str:
    if not f.by_topic:
        return ""
    rows = [(t, _n(n), _bar(n, max(f.by_topic.values()), "")) for t, n in sorted(f.by_topic.items())]
    return "<h2>Accepted records by topic</h2>" + _table(["topic", "accepted", ""], rows)


def _usage(f: Funnel) -> str:
    rows = [
        ("prompt tokens", _n(f.prompt_tokens)),
        ("completion tokens", _n(f.completion_tokens)),
        ("model requests", _n(f.requests)),
        ("answered from the cache", _n(f.cached_requests)),
        ("cost (USD)", f"{f.cost_usd:.4f}"),
    ]
    return "<h2>Tokens and cost</h2>" + _table(["", ""], rows)


def _mix(m: Manifest) -> str:
    state = next((s for s in reversed(m.rounds) if s.mix), None)
    if state is None or not state.mix:
        return ""
    rows = [(k, Markup(_e(json.dumps(v) if isinstance(v, (dict, list)) else v))) for k, v in state.mix.items()]
    return f"<h2>Training mix (golden + synthetic), round {state.round}</h2>" + _table(["", ""], rows)


def _collapse(path: Path) -> str:
    if not path.is_file():
        return ""
    report = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for name, r in (report.get("indicators") or {}).items():
        status = r.get("status", "?")
        value = r.get("value")
        rows.append((name, "—" if value is None else f"{value:.4g}", r.get("warn"), r.get("fail"), _status_span(status)))
    head = f"<h2>Collapse indicators (round {report.get('round')}): <span class='{_e(report.get('status'))}'>{_e(report.get('status'))}</span></h2>"
    return head + _table(["indicator", "value", "warn", "fail", "status"], rows)


def _table(head: list[str], rows: list[tuple[Any, ...]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _cell(c: Any) -> str:
    if isinstance(c, Markup):
        return f"<td>{c}</td>"
    s = "" if c is None else str(c)
    cls = " class='n'" if s.replace(",", "").replace(".", "").isdigit() else ""
    return f"<td{cls}>{_e(s)}</td>"


def _bar(n: int, total: int, cls: str) -> str:
    width = 0 if not total else int(240 * n / total)
    return Markup(f"<span class='bar {cls}' style='width:{width}px'></span>")


def _n(v: int) -> str:
    return f"{v:,}"


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)
