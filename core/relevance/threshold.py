"""Where a search's delivery threshold lies: the user's number, or one fitted to the search.

``relevanceSettings.threshold`` set to a number is used as it is. Omitted (or ``"auto"``),
the threshold adapts to the search:

- **adaptive**: from the search's own recent stream. The scores its matching entries
  would get when fresh are ranked, and the lowest ``1 - ADAPTIVE_DELIVER_SHARE`` of them
  fall below the threshold. The query is the user's own statement of what matters, so
  most of what it matches is delivered and only its weakest tail is held back.
- **calibrated**: once the search has ``MIN_CALIBRATION_LABELS_PER_CLASS`` labels of
  each kind among its matched stories, the feedback model's calibration turns each
  stream score into P(relevant) and the threshold is the score that maximizes the
  expected F1 over the stream; it is pulled towards the adaptive one with the weight of
  ``CALIBRATION_PRIOR_LABELS`` labels, so a handful of labels moves it a little.

Measured on the AG News development half (bench/relevance.py, short queries): mixture
fits of the score distribution (two Gaussians, on scores or their logits, on matches or
the whole stream) put the threshold at the upper mode and lost 0.15-0.27 F1; delivering
the top 90% of matches was within 0.016 of the best fixed threshold (the top 95%: 0.006,
but 0.076 worse with long queries, 80%: 0.037). With labels calibrating, F1 stayed
within 0.005 of the best fixed threshold at 50 and 200 labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from core.relevance.learning import Calibration

#: Share of the search's recent matches delivered while no labels calibrate.
ADAPTIVE_DELIVER_SHARE = 0.9
#: Fewest recent matches the adaptive threshold is taken from.
ADAPTIVE_MIN_SCORES = 20
#: Threshold while a search has too few matches to adapt to: the best fixed threshold
#: of the development half, 0.23 with short queries and 0.34 with long ones.
FALLBACK_THRESHOLD = 0.25
#: Labels the adaptive threshold counts as when blended with the labels' calibration.
CALIBRATION_PRIOR_LABELS = 20

ThresholdKind = Literal["fixed", "adaptive", "calibrated", "default"]


@dataclass(frozen=True)
class Threshold:
    """A search's threshold for one run, and where it came from."""

    value: float
    kind: ThresholdKind
    basis: str

    def explain(self) -> dict[str, Any]:
        return {"value": round(self.value, 3), "kind": self.kind, "basis": self.basis}

    def holds_back(self, score: float, fresh: float) -> str | None:
        """Why a story scoring ``score`` (``fresh``: as if just published) is held back,
        or ``None``. An adapted threshold comes from fresh scores of the stream, so it is
        compared with the fresh score: it holds back what is weak, not what is old."""
        if self.kind == "fixed":
            return (
                f"score {score:.3f} below threshold {self.value:.3f}"
                if score < self.value
                else None
            )
        if fresh < self.value:
            return f"fresh score {fresh:.3f} below {self.kind} threshold {self.value:.3f}"
        return None


def _expected_f1_cut(scores: np.ndarray[Any, Any], probability: np.ndarray[Any, Any]) -> float:
    """The score at which delivering everything at or above it has the best expected F1
    when each item is relevant with ``probability``."""
    order = np.argsort(-scores, kind="stable")
    expected_hits = np.cumsum(probability[order])
    delivered = np.arange(1, len(order) + 1)
    f1 = 2.0 * expected_hits / (delivered + probability.sum())
    return float(scores[order][int(np.argmax(f1))])


def choose_threshold(
    fixed: float | None, stream_scores: np.ndarray[Any, Any], calibration: Calibration | None
) -> Threshold:
    """The threshold of a run: ``fixed`` when the user set one; else from
    ``stream_scores`` (the fresh scores of the search's recent matching entries) and the
    feedback model's ``calibration``."""
    if fixed is not None:
        return Threshold(fixed, "fixed", "set in relevanceSettings.threshold")
    if len(stream_scores) < ADAPTIVE_MIN_SCORES:
        return Threshold(
            FALLBACK_THRESHOLD,
            "default",
            f"fewer than {ADAPTIVE_MIN_SCORES} recent matches to adapt to",
        )
    share = round(100 * (1 - ADAPTIVE_DELIVER_SHARE))
    adaptive = float(np.quantile(stream_scores, 1.0 - ADAPTIVE_DELIVER_SHARE))
    if calibration is None:
        return Threshold(
            adaptive, "adaptive", f"holds back the weakest {share}% of this search's recent matches"
        )
    cut = _expected_f1_cut(stream_scores, calibration.probability(stream_scores))
    weight = calibration.labels / (calibration.labels + CALIBRATION_PRIOR_LABELS)
    value = weight * cut + (1.0 - weight) * adaptive
    return Threshold(value, "calibrated", f"calibrated from {calibration.labels} labels")
