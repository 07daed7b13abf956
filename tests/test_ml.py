"""The one trainer behind the win probability and the lead score (store/ml.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from store import ml


def _examples(n: int = 400, seed: int = 1) -> tuple[list[dict[str, float]], list[int], list[float]]:
    rng = np.random.default_rng(seed)
    examples, labels, weights = [], [], []
    for _ in range(n):
        a, group = rng.normal(), rng.choice(["x", "y", "z"])
        examples.append({"a": a, f"g={group}": 1.0, "always": 1.0})
        labels.append(int(rng.random() < expit(0.3 + 1.2 * a + (0.8 if group == "y" else 0.0))))
        weights.append(float(rng.uniform(0.2, 3.0)))
    return examples, labels, weights


def test_the_penalty_is_todays_l2_on_weights_that_average_one() -> None:
    """C = 1 / l2: the fitted model is the minimum of sum w_i logloss_i + l2 / 2 |coef|^2, the weights
    scaled to average 1 and the intercept not penalised, so that objective's gradient vanishes there."""
    examples, labels, weights = _examples()
    for l2 in (0.3, 5.0, 100.0):
        model = ml.LogisticModel.fit(examples, labels, weights=weights, l2=l2)
        x = ml._matrix(examples, model.features)
        z = (x - np.asarray(model.mean)) / np.asarray(model.scale)  # trained unclipped
        w = np.asarray(weights) / np.mean(weights)
        residual = w * (expit(model.intercept + z @ np.asarray(model.coef)) - np.asarray(labels))
        assert abs(residual.sum()) < 1e-6
        assert np.abs(z.T @ residual + l2 * np.asarray(model.coef)).max() < 1e-6
        assert abs(model.coef[model.features.index("always")]) < 1e-12  # a constant feature: no weight


def test_train_chooses_the_penalty_on_the_latest_examples_and_refits_on_all() -> None:
    examples, labels, weights = _examples()
    grid = (0.3, 3.0, 30.0, 300.0)
    trained = ml.train(examples, labels, weights=weights, l2_grid=grid, holdout=100, score="brier", decimals=4,
                       default_l2=1.0)
    by_hand = []
    for l2 in grid:
        m = ml.LogisticModel.fit(examples[:300], labels[:300], weights=weights[:300], l2=l2)
        by_hand.append({"l2": l2, "brier": round(ml.brier(m.predict(examples[300:]), labels[300:], weights[300:]), 4)})
    assert trained.tried == by_hand
    assert trained.l2 == min(by_hand, key=lambda t: (t["brier"], -t["l2"]))["l2"]
    refit = ml.LogisticModel.fit(examples, labels, weights=weights, l2=trained.l2)
    assert np.allclose(trained.model.coef, refit.coef, atol=1e-9)
    assert np.allclose(trained.model.predict(examples), refit.predict(examples), atol=1e-9)


def test_ties_go_to_the_stronger_penalty_and_no_holdout_means_the_default() -> None:
    examples, labels, _ = _examples()
    tie = ml.train(examples, labels, l2_grid=(1.0, 10.0, 100.0), holdout=80, score="log_loss", decimals=0,
                   default_l2=3.0)
    assert tie.l2 == 100.0 and len({t["log_loss"] for t in tie.tried}) == 1
    none = ml.train(examples, labels, l2_grid=(1.0, 10.0), holdout=0, score="log_loss", decimals=6, default_l2=3.0)
    assert none.l2 == 3.0 and none.tried == []
    assert np.allclose(none.model.coef, ml.LogisticModel.fit(examples, labels, l2=3.0).coef)
    with pytest.raises(ValueError, match="both outcomes"):
        ml.train(examples, [1] * 300 + labels[300:], l2_grid=(1.0,), holdout=100, score="brier", decimals=4,
                 default_l2=1.0)


def test_log_loss_counts_a_sure_and_wrong_answer_as_one_in_a_million() -> None:
    assert ml.log_loss([1.0, 0.5], [0, 1]) == pytest.approx((-np.log(1e-6) - np.log(0.5)) / 2)
