"""A small, explainable learner for the CRM's scores (win probability, lead score).

Logistic regression with an L2 penalty, fitted by Newton's method on standardised
features, in numpy. It is the right size for a workspace's history (hundreds to a
few hundred thousand examples, tens of features): it trains in well under a second,
its output is a calibrated probability, and every prediction splits exactly into one
contribution per feature, which is what "the top reasons" are.

Examples are dicts of named features (`{"stage=Negotiation": 1, "log_amount": 10.8}`);
a feature missing from a dict is 0. The model serialises to plain JSON so it can be
stored in the database (store/services/scoring_models.py) and read by any process.

Also here: the calibration measures a report needs (Brier score, a reliability table,
ROC AUC), computed with per-example weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Example = Mapping[str, float]


@dataclass(frozen=True)
class Contribution:
    feature: str
    value: float  # the example's raw value of the feature
    logit: float  # how far it moves the log-odds from the average example's


@dataclass
class LogisticModel:
    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]  # per standardised feature
    intercept: float  # log-odds of the average example
    # Each feature is clipped to its 1st-99th percentile in training before predicting: a value far
    # outside what the model saw (a close date a year out) gets no more weight than the edge did.
    lo: list[float] | None = None
    hi: list[float] | None = None

    @classmethod
    def fit(cls, examples: Sequence[Example], labels: Sequence[int], *, weights: Sequence[float] | None = None,
            l2: float = 1.0, max_iter: int = 50) -> LogisticModel:
        """Fit on examples with labels 0/1; `weights` (default 1) weigh each example's loss.

        `l2` is the penalty on the standardised coefficients (not on the intercept): it keeps
        rare one-hot features from running off.
        """
        if len(examples) != len(labels):
            raise ValueError("one label per example")
        y = np.asarray(labels, dtype=float)
        if len(y) == 0 or y.min() == y.max():
            raise ValueError("training needs examples of both outcomes")
        names = sorted({k for ex in examples for k in ex})
        x = _matrix(examples, names)
        w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
        w = w / w.mean()
        mean = np.average(x, axis=0, weights=w)
        scale = np.sqrt(np.average((x - mean) ** 2, axis=0, weights=w))
        scale[scale < 1e-9] = 1.0
        z = np.hstack([np.ones((len(y), 1)), (x - mean) / scale])
        beta = np.zeros(z.shape[1])
        beta[0] = math.log(np.average(y, weights=w) / (1 - np.average(y, weights=w)))
        penalty = np.full(z.shape[1], l2)
        penalty[0] = 0.0
        for _ in range(max_iter):
            p = _sigmoid(z @ beta)
            grad = z.T @ (w * (p - y)) + penalty * beta
            hess = (z * (w * p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(beta))
            step = np.linalg.solve(hess, grad)
            beta -= step
            if np.max(np.abs(step)) < 1e-8:
                break
        lo, hi = np.percentile(x, [1, 99], axis=0)
        return cls(names, mean.tolist(), scale.tolist(), beta[1:].tolist(), float(beta[0]), lo.tolist(), hi.tolist())

    def _z(self, examples: Sequence[Example]) -> np.ndarray:
        x = _matrix(examples, self.features)
        if self.lo is not None and self.hi is not None:
            x = np.clip(x, np.asarray(self.lo), np.asarray(self.hi))
        return (x - np.asarray(self.mean)) / np.asarray(self.scale)

    def predict(self, examples: Sequence[Example]) -> np.ndarray:
        if not examples:
            return np.zeros(0)
        return _sigmoid(self.intercept + self._z(examples) @ np.asarray(self.coef))

    def explain(self, example: Example) -> list[Contribution]:
        """Each feature's share of this example's log-odds, largest effect first.

        The contributions add up exactly: intercept + sum(logit) is the example's log-odds.
        Features that are absent (0) still count when the average example has them
        (being *not* in stage Negotiation lowers the odds of a deal).
        """
        z = self._z([example])[0]
        parts = [Contribution(name, float(example.get(name, 0.0)), float(c * zi))
                 for name, c, zi in zip(self.features, self.coef, z, strict=True)]
        return sorted(parts, key=lambda c: -abs(c.logit))

    def to_dict(self) -> dict[str, Any]:
        return {"type": "logistic", "features": self.features, "mean": self.mean, "scale": self.scale,
                "coef": self.coef, "intercept": self.intercept, "lo": self.lo, "hi": self.hi}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogisticModel:
        if data.get("type") != "logistic":
            raise ValueError(f"not a logistic model: {data.get('type')!r}")
        return cls(list(data["features"]), list(data["mean"]), list(data["scale"]), list(data["coef"]),
                   float(data["intercept"]), data.get("lo"), data.get("hi"))


def _matrix(examples: Sequence[Example], names: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    x = np.zeros((len(examples), len(names)))
    for row, ex in enumerate(examples):
        for name, value in ex.items():
            col = index.get(name)
            if col is not None:
                x[row, col] = float(value)
    return x


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(v, -35, 35)))


# --- calibration measures ---------------------------------------------------------------------


def _w(weights: Sequence[float] | None, n: int) -> np.ndarray:
    return np.ones(n) if weights is None else np.asarray(weights, dtype=float)


def brier(probs: Sequence[float], labels: Sequence[int], weights: Sequence[float] | None = None) -> float:
    """Mean squared error of the probabilities (0 is perfect; always saying 0.5 scores 0.25)."""
    p, y = np.asarray(probs, dtype=float), np.asarray(labels, dtype=float)
    return float(np.average((p - y) ** 2, weights=_w(weights, len(y))))


def log_loss(probs: Sequence[float], labels: Sequence[int], weights: Sequence[float] | None = None) -> float:
    p = np.clip(np.asarray(probs, dtype=float), 1e-6, 1 - 1e-6)
    y = np.asarray(labels, dtype=float)
    return float(np.average(-(y * np.log(p) + (1 - y) * np.log(1 - p)), weights=_w(weights, len(y))))


def auc(probs: Sequence[float], labels: Sequence[int], weights: Sequence[float] | None = None) -> float | None:
    """Weighted ROC AUC: the chance a random win is scored above a random loss (ties count half)."""
    p, y, w = np.asarray(probs, dtype=float), np.asarray(labels), _w(weights, len(probs))
    pos, neg = y == 1, y == 0
    if not pos.any() or not neg.any():
        return None
    order = np.argsort(p, kind="mergesort")
    p, pos, w = p[order], pos[order], w[order]
    total, neg_below = 0.0, 0.0
    i = 0
    while i < len(p):  # walk groups of tied scores
        j = i
        while j < len(p) and p[j] == p[i]:
            j += 1
        wp, wn = float(w[i:j][pos[i:j]].sum()), float(w[i:j][~pos[i:j]].sum())
        total += wp * (neg_below + wn / 2)
        neg_below += wn
        i = j
    return total / (float(w[pos].sum()) * float(w[~pos].sum()))


@dataclass(frozen=True)
class Bin:
    lo: float
    hi: float
    examples: int
    weight: float
    predicted: float | None  # weighted mean probability in the bin
    observed: float | None  # weighted share that happened


def reliability(probs: Sequence[float], labels: Sequence[int], weights: Sequence[float] | None = None,
                bins: int = 10) -> list[Bin]:
    """Predicted against observed, in `bins` equal-width bins of predicted probability."""
    p, y, w = np.asarray(probs, dtype=float), np.asarray(labels, dtype=float), _w(weights, len(probs))
    which = np.minimum((p * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        m = which == b
        wt = float(w[m].sum())
        out.append(Bin(b / bins, (b + 1) / bins, int(m.sum()), wt,
                       float(np.average(p[m], weights=w[m])) if wt else None,
                       float(np.average(y[m], weights=w[m])) if wt else None))
    return out


def expected_calibration_error(table: Sequence[Bin]) -> float:
    total = sum(b.weight for b in table)
    return sum(b.weight * abs((b.predicted or 0) - (b.observed or 0)) for b in table) / total if total else 0.0
