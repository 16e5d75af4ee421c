"""Human review of a run: an append-only decisions overlay (`review/decisions.jsonl`), a SQLite index
for fast filtering, agreement statistics, interchange with Argilla and Label Studio, and a local web
app (`synthloop review RUN`, the `review` extra: starlette + uvicorn).

Importing this package never imports the web stack: `synthloop publish` applies decisions without it.
"""

from synthloop.review.agreement import cohen_kappa, judge_agreement, krippendorff_alpha, reviewer_agreement
from synthloop.review.apply import ReviewCounts, export_calibration, review_counts, review_states, reviewed_records
from synthloop.review.decisions import Decision, DecisionLog, ReviewState, fold
from synthloop.review.index import Filters, RecordIndex, decisions_path, review_dir
from synthloop.review.session import Review

__all__ = [
    "Decision",
    "DecisionLog",
    "Filters",
    "RecordIndex",
    "Review",
    "ReviewCounts",
    "ReviewState",
    "cohen_kappa",
    "decisions_path",
    "export_calibration",
    "fold",
    "judge_agreement",
    "krippendorff_alpha",
    "review_counts",
    "review_dir",
    "review_states",
    "reviewed_records",
    "reviewer_agreement",
]
