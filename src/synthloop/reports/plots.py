"""Static plots for `report.html`: inline SVG written here in Python (no JS library, no network).
Every label that comes from data goes through `_e` (HTML escaping), so a topic or reason holding
markup shows as text.

    grouped_bars     funnel per round (accepted / rejected / not done)
    hbars            rejection reasons
    histogram        judge scores, with the judge's threshold
    lines            per-skill curves across rounds; collapse indicators with their bands
    scatter          a 2-D map of synthetic vs golden texts: PCA of hashed bag-of-words vectors
                     (`embed_map`), fast and offline; a lexical map, not a semantic one
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import xxhash

PALETTE = ["#3b6fd0", "#e08a2e", "#3a9a5b", "#c0446a", "#7d5bc7", "#2aa3b0", "#8a8a2e", "#b5542f"]
ACCEPTED, REJECTED, PENDING, GOLDEN = "#3a9a5b", "#c9503c", "#c8ccd4", "#e0a030"
FONT = "font-family='system-ui,sans-serif' font-size='11'"


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _svg(w: int, h: int, body: list[str], title: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {w} {h}' width='{w}' height='{h}' role='img' "
            f"aria-label='{_e(title)}' {FONT}><title>{_e(title)}</title>{''.join(body)}</svg>")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    return next(m * exp for m in (1, 2, 2.5, 5, 10) if m * exp >= v)


def _legend(items: Sequence[tuple[str, str]], x: int, y: int) -> list[str]:
    out = []
    for label, color in items:
        out.append(f"<rect x='{x}' y='{y - 9}' width='10' height='10' fill='{color}' rx='2'/><text x='{x + 14}' y='{y}'>{_e(label)}</text>")
        x += 24 + 7 * len(label)
    return out


def _y_axis(x0: int, y0: int, h: int, w: int, top: float, ticks: int = 4, fmt: str = "{:g}") -> list[str]:
    out = []
    for i in range(ticks + 1):
        v = top * i / ticks
        y = y0 - h * i / ticks
        out.append(f"<line x1='{x0}' x2='{x0 + w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e6e8ec'/>"
                   f"<text x='{x0 - 5}' y='{y + 4:.1f}' text-anchor='end' fill='#667'>{_e(fmt.format(v))}</text>")
    return out


def grouped_bars(groups: Sequence[tuple[str, dict[str, float]]], series: Sequence[tuple[str, str]], title: str,
                 stacked: bool = True) -> str:
    """One bar per group (stacked by series), e.g. rounds stacked accepted / rejected / not done."""
    if not groups:
        return ""
    w, h, left, bottom, top_pad = 620, 230, 48, 30, 26
    plot_w, plot_h = w - left - 10, h - bottom - top_pad
    totals = [sum(v.values()) if stacked else max(v.values(), default=0) for _, v in groups]
    top = _nice_max(max(totals, default=0))
    body = _y_axis(left, h - bottom, plot_h, plot_w, top)
    slot = plot_w / len(groups)
    bw = min(60.0, slot * 0.6)
    for i, (label, values) in enumerate(groups):
        x = left + slot * i + (slot - bw) / 2
        y = float(h - bottom)
        for name, color in series:
            v = values.get(name, 0)
            bh = plot_h * v / top
            y -= bh
            body.append(f"<rect x='{x:.1f}' y='{y:.1f}' width='{bw:.1f}' height='{bh:.1f}' fill='{color}'><title>{_e(label)}: {_e(name)} {v:g}</title></rect>")
        body.append(f"<text x='{x + bw / 2:.1f}' y='{h - bottom + 14}' text-anchor='middle'>{_e(label)}</text>")
        body.append(f"<text x='{x + bw / 2:.1f}' y='{y - 3:.1f}' text-anchor='middle' fill='#445'>{totals[i]:g}</text>")
    body += _legend(series, left, 14)
    return _svg(w, h, body, title)


def hbars(items: Sequence[tuple[str, float]], title: str, color: str = REJECTED, limit: int = 14) -> str:
    """Horizontal bars, largest first (rejection reasons)."""
    items = sorted(items, key=lambda kv: -kv[1])[:limit]
    if not items:
        return ""
    label_w, row, w = 250, 20, 620
    h = row * len(items) + 10
    top = max(v for _, v in items)
    body = []
    for i, (label, v) in enumerate(items):
        y = 5 + i * row
        bw = (w - label_w - 50) * v / top if top else 0
        short = label if len(label) <= 40 else label[:39] + "…"
        body.append(f"<text x='{label_w - 6}' y='{y + 13}' text-anchor='end'>{_e(short)}<title>{_e(label)}</title></text>"
                    f"<rect x='{label_w}' y='{y + 3}' width='{bw:.1f}' height='{row - 7}' fill='{color}' rx='2'/>"
                    f"<text x='{label_w + bw + 5:.1f}' y='{y + 13}' fill='#445'>{v:g}</text>")
    return _svg(w, h, body, title)


def histogram(values: Sequence[float], bins: Sequence[float], title: str, threshold: float | None = None,
              split: Sequence[bool] | None = None) -> str:
    """Counts per bin (the judge's 1-5 scale: bins 1..5), accepted vs rejected stacked when `split` is given."""
    if not values:
        return ""
    counts_ok = [0] * len(bins)
    counts_no = [0] * len(bins)
    for i, v in enumerate(values):
        k = min(range(len(bins)), key=lambda j: abs(bins[j] - v))
        if split is None or split[i]:
            counts_ok[k] += 1
        else:
            counts_no[k] += 1
    groups = [(f"{b:g}", {"accepted": float(counts_ok[k]), "rejected": float(counts_no[k])}) for k, b in enumerate(bins)]
    svg = grouped_bars(groups, [("accepted", ACCEPTED), ("rejected", REJECTED)], title)
    if threshold is None:
        return svg
    note = f"<text x='610' y='14' text-anchor='end' fill='#445'>judge threshold: score ≥ {_e(f'{threshold:g}')}</text>"
    return svg.replace("</svg>", note + "</svg>")


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE]-?\d+)?")


def parse_band(text: Any) -> tuple[float | None, float | None] | None:
    """The acceptable region a band names: '>= 0.8' -> (0.8, None); '<= 2' -> (None, 2);
    '0.75..1.5' or '[0.8, 1.4]' -> (0.8, 1.4). A number alone is read as a lower bound; anything
    unreadable is no band (the plot is drawn without it)."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text), None
    if isinstance(text, (list, tuple)):
        return (float(text[0]), float(text[1])) if len(text) == 2 else None
    numbers = [float(x) for x in _NUMBER.findall(str(text))]
    if len(numbers) >= 2:
        return numbers[0], numbers[1]
    if len(numbers) == 1:
        return (None, numbers[0]) if "<" in str(text) else (numbers[0], None)
    return None


def lines(xs: Sequence[Any], series: dict[str, Sequence[float | None]], title: str, y_max: float | None = None,
          bands: tuple[Any, Any] | None = None, statuses: Sequence[str] | None = None, y_label: str = "") -> str:
    """Lines across rounds; `bands` (warn, fail) shades what lies outside each acceptable region."""
    if not xs or not series:
        return ""
    w, h, left, bottom, top_pad = 620 if len(series) > 1 else 460, 200, 46, 28, 24
    plot_w, plot_h = w - left - 34, h - bottom - top_pad
    vals = [v for s in series.values() for v in s if v is not None]
    parsed = [parse_band(b) for b in (bands or ())]
    edges = [x for p in parsed if p for x in p if x is not None]
    top = y_max or _nice_max(max([*vals, *edges, 0.0]) * 1.1)
    y0 = h - bottom

    def y(v: float) -> float:
        return y0 - plot_h * max(0.0, min(v, top)) / top

    body = _y_axis(left, y0, plot_h, plot_w, top, fmt="{:.2g}")
    for p, color in zip(parsed, ("#fff1cc", "#fbdcd6"), strict=False):
        if p is None:
            continue
        lo, hi = p
        if lo is not None:
            body.append(f"<rect x='{left}' y='{y(lo):.1f}' width='{plot_w}' height='{y0 - y(lo):.1f}' fill='{color}' opacity='.85'/>")
        if hi is not None:
            body.append(f"<rect x='{left}' y='{top_pad}' width='{plot_w}' height='{y(hi) - top_pad:.1f}' fill='{color}' opacity='.85'/>")
    step = plot_w / max(1, len(xs) - 1) if len(xs) > 1 else 0.0
    px = [left + (step * i if len(xs) > 1 else plot_w / 2) for i in range(len(xs))]
    for i, x in enumerate(xs):
        body.append(f"<text x='{px[i]:.1f}' y='{y0 + 14}' text-anchor='middle'>{_e(x)}</text>")
    for k, (name, ys) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        pts = [(px[i], y(v)) for i, v in enumerate(ys) if v is not None]
        if len(pts) > 1:
            body.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{' '.join(f'{a:.1f},{b:.1f}' for a, b in pts)}'/>")
        for i, v in enumerate(ys):
            if v is None:
                continue
            st = statuses[i] if statuses else ""
            dot = {"fail": "#c22", "warn": "#d08a00"}.get(st, color)
            body.append(f"<circle cx='{px[i]:.1f}' cy='{y(v):.1f}' r='3.5' fill='{dot}'><title>{_e(name)} @ {_e(xs[i])}: {v:.4g} {_e(st)}</title></circle>")
    if len(series) > 1:
        body += _legend([(n, PALETTE[k % len(PALETTE)]) for k, n in enumerate(series)], left, 14)
    else:
        body.append(f"<text x='{left}' y='14' font-weight='600'>{_e(y_label or next(iter(series)))}</text>")
    return _svg(w, h, body, title)


def scatter(points: Sequence[tuple[float, float, str]], colors: dict[str, str], title: str) -> str:
    """Points (x, y, group) scaled into the box, one colour per group."""
    if not points:
        return ""
    w, h, pad = 620, 360, 16
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x_lo, x_hi, y_lo, y_hi = min(xs), max(xs), min(ys), max(ys)
    sx = (w - 2 * pad) / ((x_hi - x_lo) or 1.0)
    sy = (h - 2 * pad - 20) / ((y_hi - y_lo) or 1.0)
    body = [f"<rect x='0.5' y='20.5' width='{w - 1}' height='{h - 21}' fill='#fafbfc' stroke='#e6e8ec'/>"]
    for group in colors:  # draw groups in legend order: golden first, synthetic on top
        for x, y_, g in points:
            if g == group:
                body.append(f"<circle cx='{pad + (x - x_lo) * sx:.1f}' cy='{h - pad - (y_ - y_lo) * sy:.1f}' r='3' fill='{colors[g]}' fill-opacity='.7'/>")
    counts = {g: sum(p[2] == g for p in points) for g in colors}
    body += _legend([(f"{g} ({counts[g]})", c) for g, c in colors.items()], pad, 14)
    return _svg(w, h, body, title)


# -- the embedding map ---------------------------------------------------------------------------
def hashed_bow(texts: Sequence[str], dim: int = 1024) -> np.ndarray:
    """Signed feature hashing of lower-cased words, log term frequency, L2-normalised rows."""
    m = np.zeros((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        for word in re.findall(r"\w+", t.lower()):
            hv = xxhash.xxh3_64_intdigest(word.encode())
            m[i, hv % dim] += 1.0 if (hv >> 63) & 1 else -1.0
    m = np.sign(m) * np.log1p(np.abs(m))
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1.0, norms)


def pca_2d(x: np.ndarray) -> np.ndarray:
    """The first two principal components (SVD of the centred matrix)."""
    if len(x) < 3:
        return np.zeros((len(x), 2))
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def embed_map(synthetic: Sequence[str], golden: Sequence[str]) -> str:
    """Synthetic vs golden texts on one PCA plane of hashed bag-of-words vectors."""
    if not synthetic or not golden:
        return ""
    xy = pca_2d(hashed_bow([*golden, *synthetic]))
    groups = ["golden"] * len(golden) + ["synthetic"] * len(synthetic)
    points = [(float(a), float(b), g) for (a, b), g in zip(xy, groups, strict=True)]
    return scatter(points, {"golden": GOLDEN, "synthetic": PALETTE[0]}, "synthetic vs golden texts (PCA of hashed bag-of-words)")


# -- the report's sections (html.py calls these) --------------------------------------------------
def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{_e(caption)}</figcaption></figure>" if svg else ""


def plots_section(manifest: Any, recipe: dict[str, Any], f: Any, rd: Any) -> str:
    """Every plot the run's files allow; a plot whose data is absent is left out."""
    figs = [
        _figure(_funnel_plot(manifest), "Funnel per round: accepted, rejected and not yet done records."),
        _figure(hbars([(f"{st}: {r}", n) for (st, r), n in f.by_reason.items()], "rejections by stage and reason"),
                "Rejections by stage and reason (the category before ':' of each reason)."),
        _figure(_score_plot(rd, recipe), "Judge scores of every judged record, accepted vs rejected."),
        _figure(_skill_plot(manifest), "Student accuracy per skill across rounds (from each round's student evaluation)."),
        *_collapse_plots(rd, manifest),
        _figure(_map_plot(rd, manifest), "Synthetic (accepted) vs golden texts: the first two principal components of "
                "hashed bag-of-words vectors (a lexical map, computed offline; not a semantic embedding)."),
    ]
    figs = [x for x in figs if x]
    return "<h2>Plots</h2><div class='plots'>" + "".join(figs) + "</div>" if figs else ""


def _funnel_plot(m: Any) -> str:
    groups = [(f"round {s.round}", {"accepted": s.accepted, "rejected": s.rejected,
                                    "not done": max(0, s.planned - s.accepted - s.rejected)}) for s in m.rounds]
    return grouped_bars(groups, [("accepted", ACCEPTED), ("rejected", REJECTED), ("not done", PENDING)], "funnel per round")


def _score_plot(rd: Any, recipe: dict[str, Any]) -> str:
    import pyarrow.parquet as pq

    values: list[float] = []
    split: list[bool] = []
    for kind in ("accepted", "rejected"):
        for shard in rd.shards(kind):
            for vs in pq.read_table(shard, columns=["verdicts"]).column("verdicts").to_pylist():
                score = next((v["score"] for v in vs or [] if v["name"] == "judge" and v["score"] is not None), None)
                if score is not None:
                    values.append(float(score))
                    split.append(kind == "accepted")
    judge = recipe.get("judge", {})
    threshold = float(judge["min_score"]) if judge.get("enabled") and "min_score" in judge else None
    return histogram(values, [1, 2, 3, 4, 5], "judge scores", threshold=threshold, split=split)


def _skill_plot(m: Any) -> str:
    found = [(s.round, ((s.extra or {}).get("student") or {}).get("per_skill")) for s in m.rounds]
    per_round: list[tuple[int, dict[str, Any]]] = [(r, d) for r, d in found if isinstance(d, dict) and d]
    if not per_round:
        return ""
    skills = sorted({str(k) for _, d in per_round for k in d})
    series: dict[str, Sequence[float | None]] = {k: [_num(d.get(k)) for _, d in per_round] for k in skills}
    return lines([f"round {r}" for r, _ in per_round], series, "student accuracy per skill", y_max=1.0)


def _num(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _collapse_plots(rd: Any, m: Any) -> list[str]:
    """One small chart per indicator: its assessed value each round, the warn and fail bands shaded."""
    import json

    reports = []
    for s in m.rounds:
        p = rd.collapse_report_path(s.round)
        if p.is_file():
            reports.append((s.round, json.loads(p.read_text(encoding="utf-8"))))
    if not reports:
        return []
    names = list(reports[-1][1].get("indicators") or {})
    out = []
    for name in names:
        inds = [(r, (rep.get("indicators") or {}).get(name) or {}) for r, rep in reports]
        ys = [_num(i.get("assessed", i.get("value"))) for _, i in inds]
        last = inds[-1][1]
        svg = lines([f"round {r}" for r, _ in inds], {name: ys}, f"collapse: {name}", bands=(last.get("warn"), last.get("fail")),
                    statuses=[str(i.get("status", "")) for _, i in inds], y_label=name)
        out.append(_figure(svg, f"{name}: value each round (vs golden in round 0, vs round 0 after); "
                                f"amber outside the warn band {last.get('warn')}, red outside the fail band {last.get('fail')}."))
    return out


def _map_plot(rd: Any, m: Any, cap: int = 400) -> str:
    import pyarrow.parquet as pq

    mixes = [rd.mix_dir(s.round) / "mix.parquet" for s in m.rounds if (rd.mix_dir(s.round) / "mix.parquet").is_file()]
    if not mixes:
        return ""
    rows = pq.read_table(mixes[-1], columns=["source", "messages", "text"]).to_pylist()
    golden = [_row_text(r) for r in rows if r["source"] == "golden"]
    synthetic = []
    for shard in rd.shards("accepted"):
        synthetic += [_row_text(r) for r in pq.read_table(shard, columns=["messages", "text"]).to_pylist()]
    return embed_map(_spread(synthetic, cap), _spread(golden, cap))


def _row_text(r: dict[str, Any]) -> str:
    return "\n".join(x.get("content") or "" for x in r.get("messages") or []) or r.get("text") or ""


def _spread(items: list[str], cap: int) -> list[str]:
    """At most `cap` items, evenly spaced (deterministic)."""
    if len(items) <= cap:
        return items
    step = len(items) / cap
    return [items[int(i * step)] for i in range(cap)]


def human_review_section(review: dict[str, int] | None) -> str:
    if review is None:
        return ""
    cells = "".join(f"<td class='n'>{int(review.get(k, 0)):,}</td>" for k in ("reviewed", "human_accepted", "human_rejected", "edited", "confirmed", "flagged"))
    return ("<h2>Human review</h2><p>People reviewed this run with <code>synthloop review</code>; <code>export/train.jsonl</code> "
            "applies their decisions (the shards are unchanged).</p><table><tr><th>reviewed</th><th>human-accepted</th>"
            f"<th>human-rejected</th><th>edited</th><th>confirmed</th><th>flagged</th></tr><tr>{cells}</tr></table>")


def samples_section(rd: Any, per_kind: int = 10) -> str:
    """A browsable sample: the first records of evenly spaced shards, accepted and rejected."""
    parts = []
    for kind in ("accepted", "rejected"):
        recs = _sample(rd, kind, per_kind)
        if not recs:
            continue
        parts.append(f"<h3>{_e(kind)} ({len(recs)} shown)</h3>")
        for r in recs:
            tag = "<span class='tag rej'>rejected</span>" if kind == "rejected" else "<span class='tag'>accepted</span>"
            body = "\n\n".join(f"[{m.get('role')}]\n{m.get('content')}" for m in r.messages) or r.main_text()
            why = f"<div class='why'>{_e(r.rejected_stage)}: {_e(r.rejected_reason)}</div>" if kind == "rejected" else ""
            verdicts = "; ".join(f"{v.name} {'pass' if v.ok else 'fail'}{'' if v.score is None else f' {v.score:g}'}" for v in r.verdicts)
            parts.append(f"<details class='rec'><summary>{tag}<code>{_e(r.id)}</code> · {_e(r.task)} · {_e(r.topic)} · {_e(r.skill)} · "
                         f"round {r.round}</summary>{why}<pre>{_e(body)}</pre><div class='why' style='color:#556'>{_e(verdicts)}</div></details>")
    return "<h2>Sample records</h2>" + "".join(parts) if parts else ""


def _sample(rd: Any, kind: str, n: int) -> list[Any]:
    from synthloop.storage import read_shards

    shards = rd.shards(kind)
    if not shards:
        return []
    picked = _spread_paths(shards, n)
    out: list[Any] = []
    per = max(1, n // len(picked))
    for shard in picked:
        for i, rec in enumerate(read_shards([shard])):
            if i >= per or len(out) >= n:
                break
            out.append(rec)
    return out


def _spread_paths(paths: list[Any], n: int) -> list[Any]:
    if len(paths) <= n:
        return paths
    step = len(paths) / n
    return [paths[int(i * step)] for i in range(n)]


__all__ = ["embed_map", "human_review_section", "plots_section", "samples_section", "grouped_bars", "hashed_bow", "hbars", "histogram", "lines", "parse_band", "pca_2d", "scatter"]
