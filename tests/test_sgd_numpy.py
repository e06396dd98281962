"""The NumPy minibatch loop updates in place: the same steps as the generic
(functional) update, and no aliasing of stored state or best parameters."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._solvers import make_optimizer

array_api_strict = pytest.importorskip("array_api_strict")


@pytest.mark.parametrize(
    "solver, kwargs",
    [
        ("sgd", dict(momentum=0.9, nesterovs_momentum=True)),
        ("sgd", dict(momentum=0.9, nesterovs_momentum=False)),
        ("sgd", dict(momentum=0.0)),
        ("adam", dict()),
        ("sgd", dict(momentum=0.9, nesterovs_momentum=True, l1=0.3)),
        ("adam", dict(l1=0.3)),
    ],
    ids=["nesterov", "momentum", "plain", "adam", "nesterov-l1", "adam-l1"],
)
def test_in_place_update_matches_generic(rng, solver, kwargs):
    xps = array_api_strict
    params = [rng.standard_normal((3, 4)), rng.standard_normal(3)]
    ref = [xps.asarray(p.copy()) for p in params]
    fast_opt = make_optimizer(solver, learning_rate_init=0.1, **kwargs)
    ref_opt = make_optimizer(solver, learning_rate_init=0.1, **kwargs)
    for _ in range(4):
        grads = [rng.standard_normal((3, 4)), rng.standard_normal(3)]
        out = fast_opt.update(params, grads, np)
        assert out is params  # in place on NumPy
        ref = ref_opt.update(ref, [xps.asarray(g) for g in grads], xps)
    for p, r in zip(params, ref, strict=True):
        assert_allclose(p, np.asarray(r), rtol=1e-12)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_partial_fit_does_not_mutate_previous_state(rng, solver):
    X = rng.standard_normal((60, 3))
    y = rng.integers(0, 3, 60)
    clf = SoftmaxRegressionClassifier(
        solver=solver, learning_rate_init=0.05, random_state=0
    )
    clf.partial_fit(X, y, classes=[0, 1, 2])
    state = clf._optimizer_state
    moments = state["moments"]
    flat = moments if solver == "sgd" else [m for ms in moments for m in ms]
    saved = [m.copy() for m in flat]
    coef = clf.coef_.copy()
    clf.partial_fit(X, y)
    for m, s in zip(flat, saved, strict=True):
        assert np.array_equal(m, s)
    assert not np.array_equal(clf.coef_, coef)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_restores_a_copy_of_the_best_parameters(rng):
    X = rng.standard_normal((300, 4))
    y = (X[:, 0] + 0.5 * rng.standard_normal(300) > 0).astype(int)
    scores = []

    def record(est, info):
        scores.append(info["validation_score"])

    clf = SoftmaxRegressionClassifier(
        solver="sgd",
        learning_rate_init=0.5,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=30,
        random_state=0,
        verbose=0,
        callback=record,
    ).fit(X, y)
    best = int(np.argmax(scores))
    # Refit for exactly the best number of epochs: the same parameters.
    again = SoftmaxRegressionClassifier(
        solver="sgd",
        learning_rate_init=0.5,
        early_stopping=True,
        n_iter_no_change=1000,
        max_iter=best + 1,
        random_state=0,
    ).fit(X, y)
    assert_allclose(clf.coef_, again.coef_)
    assert_allclose(clf.intercept_, again.intercept_)
