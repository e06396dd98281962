"""Every feature on every input kind, against the in-memory NumPy fit.

The cells are defined in ``feature_matrix.py`` (which also prints the
README's table). A cell either equals the in-memory fit or raises
NotImplementedError naming the combination before any work; nothing falls
back silently.

* L-BFGS: the final objective within 1e-9 relative (1e-6 in float32) and
  ``predict_proba`` within 1e-6.
* SGD/Adam in deterministic settings (no shuffling, chunks and blocks whole
  multiples of the batch): the same parameters within 1e-10 on dense
  float64 kinds; the objective within 1e-6 where only the summation order
  differs (CSR, float32).

The Dask cells run on Dask's threaded scheduler: composing the features does
not depend on the scheduler, and a process cluster took 50 of the suite's
CPU seconds here (a round trip per L-BFGS iteration). What does depend on
it (pickling the problem to workers, lost workers, X never reaching the
client) is tested on a process cluster in ``test_dask.py``.
"""

import functools
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from feature_matrix import FEATURES, KINDS, SOLVERS, expected, markdown_table
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import config_context
from sklearn.datasets import make_classification

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._backend import to_numpy

pd = pytest.importorskip("pandas")
xps = pytest.importorskip("array_api_strict")
da = pytest.importorskip("dask.array")
import dask  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N, D, K, CHUNK, BATCH = 200, 5, 3, 100, 20
NAMES = ["cat", "dog", "bird"]  # soft-label columns, deliberately unsorted
# 200 rows of 5 float64 take 8,000 bytes; 0.004 MiB makes blocks of 100 rows.
MEMMAP_WORKING_MEMORY = 0.004

CELLS = [
    (f, k, s)
    for f in FEATURES
    for k in KINDS
    for s in SOLVERS
    if expected(f, k, s) != "n/a"
]


@functools.cache
def dataset(dtype="float64"):
    X, y = make_classification(
        n_samples=N,
        n_features=D,
        n_informative=4,
        n_redundant=0,
        n_classes=K,
        n_clusters_per_class=1,
        flip_y=0.1,
        random_state=0,
    )
    rng = np.random.default_rng(0)
    sw = rng.uniform(0.5, 2.0, N)
    Y = 0.7 * np.eye(K)[y] + 0.3 * rng.dirichlet(np.ones(K), size=N)
    return X.astype(dtype), y, sw, Y


def params_for(feature, solver):
    params = dict(FEATURES[feature][1], solver=solver)
    if solver == "lbfgs" and feature != "float32":
        params.update(tol=1e-10, max_iter=1000)
    else:  # deterministic: the same minibatches in every kind
        params.update(
            shuffle=False,
            batch_size=BATCH,
            max_iter=5,
            learning_rate_init=0.05,
            random_state=0,
        )
    return params


def as_kind(kind, X, tmp_path, name="X"):
    if kind == "csr":
        return sp.csr_matrix(X)
    if kind == "strict":
        return xps.asarray(X)
    if kind == "pandas":
        return pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    if kind == "dask":
        return da.from_array(X, chunks=(CHUNK, X.shape[1]))
    if kind == "memmap":
        path = tmp_path / f"{name}-{X.dtype}.npy"
        np.save(path, X)
        return np.load(path, mmap_mode="r")
    return X


def run(feature, kind, solver, tmp_path=None):
    """Fit the cell's model on ``kind`` (``"numpy"``: the reference)."""
    X, y, sw, Y = dataset("float32" if feature == "float32" else "float64")
    clf = SoftmaxRegressionClassifier(**params_for(feature, solver))
    weights = sw if feature in ("sample_weight", "balanced_sw") else None
    target = y
    if feature == "soft_names":
        target = pd.DataFrame(Y[:, [0, 1, 2]], columns=NAMES)
    Xk = as_kind(kind, X, tmp_path)
    working_memory = MEMMAP_WORKING_MEMORY if kind == "memmap" else None
    with config_context(working_memory=working_memory), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few epochs on purpose
        if feature == "partial_fit":
            half = N // 2
            rows = slice(0, half), slice(half, N)
            for i, r in enumerate(rows):
                Xr = as_kind(kind, X[r], tmp_path, f"part{i}")
                clf.partial_fit(Xr, y[r], classes=np.arange(K) if i == 0 else None)
            return clf, X
        if feature == "warm_start":  # first on half the rows, then on all
            Xh = as_kind(kind, X[: N // 2], tmp_path, "half")
            clf.fit(Xh, y[: N // 2])
        clf.fit(Xk, target, sample_weight=weights)
    return clf, X


@functools.cache
def reference(feature, solver):
    return run(feature, "numpy", solver)


def proba(clf, X):
    return np.asarray(clf.predict_proba(X), dtype=np.float64)


@pytest.fixture
def _threaded_dask():
    with dask.config.set(scheduler="threads"):
        yield


@pytest.mark.parametrize(
    ("feature", "kind", "solver"), CELLS, ids=["-".join(c) for c in CELLS]
)
def test_cell(feature, kind, solver, tmp_path, request):
    if kind == "dask":
        request.getfixturevalue("_threaded_dask")
    if expected(feature, kind, solver) == "refused":
        X, y, _, _ = dataset()
        clf = SoftmaxRegressionClassifier(**params_for(feature, solver))
        with pytest.raises(NotImplementedError, match="not supported for Dask"):
            clf.fit(as_kind(kind, X, tmp_path), y)
        assert not hasattr(clf, "n_features_in_") and not hasattr(clf, "coef_")
        return
    ref, X = reference(feature, solver)
    got, _ = run(feature, kind, solver, tmp_path)
    assert_array_equal(got.classes_, ref.classes_)
    got_coef = to_numpy(got.coef_)
    assert got_coef.dtype == ref.coef_.dtype
    # Fitted attributes are in the input's namespace: NumPy but for strict.
    assert isinstance(got.coef_, np.ndarray) == (kind != "strict")
    if solver == "lbfgs":
        # float32: J is summed in float64 from float32 logits, whose rounding
        # depends on the summation order of each kind (even the alignment of
        # a memmap): about 1e-8 relative. Its gradient is as noisy, so float32
        # cells run the default tol, which it can meet.
        rtol = 1e-6 if feature == "float32" else 1e-9
        assert_allclose(got.loss_curve_[-1], ref.loss_curve_[-1], rtol=rtol)
        atol = 1e-5 if feature == "float32" else 1e-6  # float32 eps: 1.2e-7
        assert_allclose(proba(got, X), proba(ref, X), rtol=0, atol=atol)
    elif kind == "csr" or feature == "float32":
        assert_allclose(got.loss_curve_, ref.loss_curve_, rtol=1e-6)
        assert_allclose(proba(got, X), proba(ref, X), rtol=0, atol=1e-5)
    else:
        assert_allclose(got_coef, ref.coef_, rtol=1e-10, atol=1e-10)
        assert_allclose(to_numpy(got.intercept_), ref.intercept_, atol=1e-10)
    if feature == "l1" or (feature == "l1_half" and solver == "lbfgs"):
        assert np.any(got_coef == 0), "an L1 penalty gives exact zeros"
        assert_array_equal(got_coef == 0, ref.coef_ == 0)
    if feature == "soft_names":
        assert got.classes_.tolist() == sorted(NAMES)


def test_reference_features_are_effective():
    """The reference fits differ where the feature should change the model,
    so that an input kind ignoring a feature could not pass as equal."""
    plain = reference("plain", "lbfgs")[0].coef_
    for feature in (
        "sample_weight",
        "balanced",
        "balanced_sw",
        "dict_cw",
        "l1",
        "smoothing",
        "no_intercept",
        "c_inf",
    ):
        coef = reference(feature, "lbfgs")[0].coef_
        assert np.max(np.abs(coef - plain)) > 1e-3, feature
    balanced = reference("balanced", "lbfgs")[0].coef_
    weighted = reference("balanced_sw", "lbfgs")[0].coef_
    assert np.max(np.abs(balanced - weighted)) > 1e-3


def test_readme_table_is_printed_from_the_matrix():
    assert markdown_table() in (ROOT / "README.md").read_text()
