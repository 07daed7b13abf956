"""The CRM's learned scores (win probability, lead score): one trainer, and the model it stores.

Logistic regression with an L2 penalty on standardised features, fitted by scikit-learn
(StandardScaler, then LogisticRegression with Newton's method), the penalty chosen on the
most recent examples (GridSearchCV over one split by time). It is the right size for a
workspace's history (hundreds to a few hundred thousand examples, tens of features): it
trains in well under a second, its output is a calibrated probability, and every prediction
splits exactly into one contribution per feature, which is what "the top reasons" are.

Examples are dicts of named features (`{"stage=Negotiation": 1, "log_amount": 10.8}`);
a feature missing from a dict is 0. The fitted model is exported to plain JSON
(`LogisticModel`) so it can be stored in the database (store/services/scoring_models.py) and
read by any process; predicting and explaining from it is a dot product.

The penalty `l2` is on the standardised coefficients (not on the intercept), with the example
weights scaled to average 1: the fit minimises  sum_i w_i * logloss_i + l2 / 2 * |beta|^2.
scikit-learn minimises  C * sum_i w_i * logloss_i + 1 / 2 * |beta|^2;  dividing the first by
`l2` gives the second, so the same coefficients come out with C = 1 / l2 and the weights
scaled to average 1 over the examples fitted.

Also here: the calibration measures a report needs, with per-example weights: Brier score,
log loss and ROC AUC (sklearn.metrics), and a reliability table with its expected calibration
error (sklearn's calibration_curve takes no weights and leaves out empty bins, and the win
probability weighs each deal's snapshots together as one deal).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sklearn
from scipy.special import expit
from sklearn import metrics
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

Example = Mapping[str, float]
Score = Literal["brier", "log_loss"]


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
            l2: float = 1.0) -> LogisticModel:
        """Fit on examples with labels 0/1; `weights` (default 1) weigh each example's loss.

        `l2` is the penalty on the standardised coefficients (not on the intercept): it keeps
        rare one-hot features from running off.
        """
        names, x, y, w = _data(examples, labels, weights)
        with _routing():
            pipeline = _pipeline(l2)
            pipeline.fit(x, y, sample_weight=w / w.mean())
        return cls._export(names, pipeline)

    @classmethod
    def _export(cls, names: list[str], pipeline: Pipeline) -> LogisticModel:
        clip, scaler, logistic = (step for _, step in pipeline.steps)
        return cls(names, scaler.mean_.tolist(), scaler.scale_.tolist(), logistic.coef_[0].tolist(),
                   float(logistic.intercept_[0]), clip.lo_.tolist(), clip.hi_.tolist())

    def _z(self, examples: Sequence[Example]) -> np.ndarray:
        x = _matrix(examples, self.features)
        if self.lo is not None and self.hi is not None:
            x = np.clip(x, np.asarray(self.lo), np.asarray(self.hi))
        return (x - np.asarray(self.mean)) / np.asarray(self.scale)

    def predict(self, examples: Sequence[Example]) -> np.ndarray:
        if not examples:
            return np.zeros(0)
        return expit(self.intercept + self._z(examples) @ np.asarray(self.coef))

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


@dataclass(frozen=True)
class Trained:
    model: LogisticModel
    l2: float  # the penalty chosen
    tried: list[dict[str, float]]  # each penalty of the grid with its score on the held-back examples


def train(examples: Sequence[Example], labels: Sequence[int], *, weights: Sequence[float] | None = None,
          l2_grid: Sequence[float], holdout: int, score: Score, decimals: int, default_l2: float) -> Trained:
    """Choose the penalty, then fit on all the examples with it.

    Each penalty of `l2_grid` is fitted on the examples before the last `holdout` and scored on
    those last ones (`score`, lower is better, compared at `decimals` places; ties go to the
    stronger penalty). Examples come in time order, so this is a split by time, like the use the
    model will be put to. `holdout` 0 (the caller found too few of either outcome to compare on):
    `default_l2`, nothing tried.
    """
    if holdout <= 0:
        return Trained(LogisticModel.fit(examples, labels, weights=weights, l2=default_l2), default_l2, [])
    names, x, y, w = _data(examples, labels, weights)
    first = len(y) - holdout
    if not 0 < first < len(y) or y[:first].min() == y[:first].max():
        raise ValueError("the examples before the held-back ones need both outcomes")
    measure = {"brier": brier, "log_loss": log_loss}[score]
    with _routing():
        scorer = metrics.make_scorer(lambda y_true, p, sample_weight: measure(p, y_true, sample_weight),
                                     greater_is_better=False, response_method="predict_proba")
        search = GridSearchCV(_pipeline(l2_grid[0]), {"logistic__C": [1 / l2 for l2 in l2_grid]},
                              scoring=scorer.set_score_request(sample_weight=True), refit=False, error_score="raise",
                              cv=PredefinedSplit([-1] * first + [0] * holdout))
        # Weights averaging 1 over the examples each candidate is fitted on: C = 1 / l2 (see above).
        search.fit(x, y, sample_weight=w / w[:first].mean())
    tried = [{"l2": l2, score: round(-s, decimals)}
             for l2, s in zip(l2_grid, search.cv_results_["mean_test_score"], strict=True)]
    best = min(tried, key=lambda t: (t[score], -t["l2"]))["l2"]
    with _routing():
        pipeline = _pipeline(best)
        pipeline.fit(x, y, sample_weight=w / w.mean())
    return Trained(LogisticModel._export(names, pipeline), best, tried)


class _ClipToSeen(TransformerMixin, BaseEstimator):
    """Learns each feature's 1st-99th percentile; clips to them what the model predicts on, never the
    examples it learns from (so, like sklearn's TargetEncoder, fit_transform is not fit().transform())."""

    def fit(self, x: np.ndarray, y: Any = None) -> _ClipToSeen:
        self.lo_, self.hi_ = np.percentile(x, [1, 99], axis=0)
        return self

    def fit_transform(self, x: np.ndarray, y: Any = None, **_: Any) -> np.ndarray:
        self.fit(x)
        return x

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lo_, self.hi_)


def _pipeline(l2: float) -> Pipeline:
    """Clip, standardise, logistic regression; call it inside `_routing()` (the weights go to both fits)."""
    return Pipeline([
        ("clip", _ClipToSeen()),
        ("scale", StandardScaler().set_fit_request(sample_weight=True)),
        # Newton's method, to the precision the hand-written Newton fit it replaced stopped at.
        ("logistic", LogisticRegression(C=1 / l2, solver="newton-cholesky", tol=1e-8, max_iter=50)
         .set_fit_request(sample_weight=True)),
    ])


@contextmanager
def _routing() -> Iterator[None]:
    """Metadata routing on (the sample weights reach the scaler, the regression and the scorer), and
    numpy quiet about the weighted variance of a constant feature dipping below 0 (the scaler gives
    such a feature scale 1, as it should)."""
    with sklearn.config_context(enable_metadata_routing=True), np.errstate(invalid="ignore"):
        yield


def _data(examples: Sequence[Example], labels: Sequence[int], weights: Sequence[float] | None,
          ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    if len(examples) != len(labels):
        raise ValueError("one label per example")
    y = np.asarray(labels, dtype=int)
    if len(y) == 0 or y.min() == y.max():
        raise ValueError("training needs examples of both outcomes")
    names = sorted({k for ex in examples for k in ex})
    return names, _matrix(examples, names), y, _w(weights, len(y))


def _matrix(examples: Sequence[Example], names: Sequence[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(names)}
    x = np.zeros((len(examples), len(names)))
    for row, ex in enumerate(examples):
        for name, value in ex.items():
            col = index.get(name)
            if col is not None:
                x[row, col] = float(value)
    return x


# --- calibration measures ---------------------------------------------------------------------


def _w(weights: Sequence[float] | None, n: int) -> np.ndarray:
    return np.ones(n) if weights is None else np.asarray(weights, dtype=float)


def brier(probs: Sequence[float], labels: Sequence[int], weights: Sequence[float] | None = None) -> float:
    """Mean squared error of the probabilities (0 is perfect; always saying 0.5 scores 0.25)."""
    return float(metrics.brier_score_loss(labels, probs, sample_weight=weights, labels=[0, 1]))


def log_loss(probs: Sequence[float], labels: Sequence[int], weights: Sequence[float] | None = None) -> float:
    """Mean negative log-likelihood; a probability of exactly 0 or 1 (a deal's hand-set 100%) counts as
    1e-6 from it, so one sure-and-wrong baseline answer costs 14 nats, not sklearn's 36."""
    p = np.clip(np.asarray(probs, dtype=float), 1e-6, 1 - 1e-6)
    return float(metrics.log_loss(labels, p, sample_weight=weights, labels=[0, 1]))


def auc(probs: Sequence[float], labels: Sequence[int], weights: Sequence[float] | None = None) -> float | None:
    """Weighted ROC AUC: the chance a random win is scored above a random loss (ties count half);
    None unless both outcomes occur."""
    if len(set(np.asarray(labels).tolist())) < 2:
        return None
    return float(metrics.roc_auc_score(labels, probs, sample_weight=weights))


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
