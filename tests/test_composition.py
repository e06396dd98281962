"""Regressions of features that did not compose before the one fit pipeline:
class names of soft labels, balanced weights with sample weights, partial_fit's
classes, failures on Dask, SciPy's BLAS threads after concurrent fits, and
predictions on Dask arrays."""

import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_iris, make_classification
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.preprocessing import StandardScaler
from sklearn.utils import compute_class_weight

from sksoftmax import SoftmaxRegressionClassifier
from sksoftmax._backend import _scipy_only_blas, limit_scipy_blas_threads
from sksoftmax._compat import skip_weighted_balanced_reference

pd = pytest.importorskip("pandas")

NAMES = ["cat", "dog", "bird"]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(0)
    Y = 0.8 * np.eye(3)[y] + 0.2 * rng.dirichlet(np.ones(3), size=len(y))
    return X, y, Y


# -- class_weight="balanced" with sample_weight -----------------------------------


@pytest.mark.skipif(
    skip_weighted_balanced_reference() is not None,
    reason=str(skip_weighted_balanced_reference()),
)
@pytest.mark.parametrize("n_classes", [2, 3], ids=["binary", "multiclass"])
def test_balanced_weights_count_the_sample_weights_as_logistic_regression(n_classes):
    X, y = make_classification(
        n_samples=300,
        n_features=6,
        n_informative=4,
        n_classes=n_classes,
        weights=[0.6] + [0.4 / (n_classes - 1)] * (n_classes - 1),
        random_state=0,
    )
    sw = np.random.default_rng(1).uniform(0.1, 3.0, len(y))
    ours = SoftmaxRegressionClassifier(
        class_weight="balanced", tol=1e-10, max_iter=1000
    ).fit(X, y, sample_weight=sw)
    ref = LogisticRegression(class_weight="balanced", tol=1e-10, max_iter=1000)
    ref.fit(X, y, sample_weight=sw)
    # Both stop at L-BFGS-B's floor (J no longer decreases in float64); the
    # objective agrees there to rounding, the coefficients to what the
    # weakest curvature leaves of that rounding (a few 1e-6 here).
    cw = compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=sw)

    def objective(est):  # LogisticRegression's: sum s_i ce_i + ||W||^2 / (2 C)
        P = est.predict_proba(X)
        ce = log_loss(y, P, sample_weight=sw * cw[y], normalize=False)
        return ce + 0.5 * np.sum(est.coef_**2)

    assert objective(ours) <= objective(ref) * (1 + 1e-12)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-5, atol=1e-5)
    assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-5, atol=1e-5)


# -- soft labels keep their class names ---------------------------------------------


def test_soft_labels_in_a_dataframe_name_the_classes(iris):
    X, y, Y = iris
    frame = pd.DataFrame(Y, columns=NAMES)  # columns in no sorted order
    clf = SoftmaxRegressionClassifier().fit(X, frame)
    assert clf.classes_.tolist() == sorted(NAMES)
    # The same model as columns in sorted order, named by position.
    order = np.argsort(NAMES)
    plain = SoftmaxRegressionClassifier().fit(X, Y[:, order])
    assert_allclose(clf.predict_proba(X), plain.predict_proba(X), atol=1e-12)
    assert set(clf.predict(X)) <= set(NAMES)


def test_partial_fit_soft_labels_with_names_keeps_them(iris):
    X, y, Y = iris
    clf = SoftmaxRegressionClassifier(solver="sgd", random_state=0)
    clf.partial_fit(X, Y, classes=NAMES)
    assert clf.classes_.tolist() == sorted(NAMES)
    # Unnamed columns on later calls follow classes_.
    clf.partial_fit(X, Y[:, np.argsort(NAMES)])
    assert clf.classes_.tolist() == sorted(NAMES)


def test_soft_partial_fit_after_string_labels_keeps_classes_and_predict_type(iris):
    X, y, Y = iris
    labels = np.array(sorted(NAMES))[y]
    clf = SoftmaxRegressionClassifier(solver="adam", random_state=0)
    clf.partial_fit(X, labels, classes=sorted(NAMES))
    clf.partial_fit(X, Y)
    assert clf.classes_.tolist() == sorted(NAMES)
    assert clf.predict(X).dtype.kind == "U"


def test_warm_start_with_unnamed_soft_labels_keeps_string_classes(iris):
    X, y, Y = iris
    labels = np.array(sorted(NAMES))[y]
    clf = SoftmaxRegressionClassifier(warm_start=True).fit(X, labels)
    coef = clf.coef_.copy()
    clf.fit(X, np.eye(3)[y])  # the same targets as soft labels: a warm restart
    assert clf.classes_.tolist() == sorted(NAMES)
    assert clf.n_iter_ <= 1
    assert_allclose(clf.coef_, coef, atol=1e-3)


# -- partial_fit's classes ---------------------------------------------------------


def test_partial_fit_refuses_other_classes_on_a_later_call(iris):
    X, y, _ = iris
    clf = SoftmaxRegressionClassifier(solver="sgd").partial_fit(X, y, classes=[0, 1, 2])
    clf.partial_fit(X, y, classes=[2, 1, 0])  # the same set is fine
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=[0, 1, 2, 3])


def test_partial_fit_refuses_balanced_class_weights(iris):
    X, y, _ = iris
    clf = SoftmaxRegressionClassifier(solver="sgd", class_weight="balanced")
    with pytest.raises(NotImplementedError, match="not supported by partial_fit"):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(clf, "n_features_in_")


# -- SciPy's BLAS threads --------------------------------------------------------


def test_overlapping_limits_restore_scipy_blas_threads():
    """Two fits whose limits overlap and end in the order they began (A in,
    B in, A out, B out) leave SciPy's BLAS as it was, not at one thread."""
    blas = _scipy_only_blas()
    if blas is None:
        pytest.skip("NumPy and SciPy share one BLAS here: nothing is limited")
    before = [lib["num_threads"] for lib in blas.info()]
    first, second = limit_scipy_blas_threads(), limit_scipy_blas_threads()
    first.__enter__()
    second.__enter__()
    assert {lib["num_threads"] for lib in blas.info()} == {1}
    first.__exit__(None, None, None)
    assert {lib["num_threads"] for lib in blas.info()} == {1}  # B still runs
    second.__exit__(None, None, None)
    assert [lib["num_threads"] for lib in blas.info()] == before


def test_concurrent_fits_restore_scipy_blas_threads(iris):
    blas = _scipy_only_blas()
    if blas is None:
        pytest.skip("NumPy and SciPy share one BLAS here: nothing is limited")
    before = [lib["num_threads"] for lib in blas.info()]
    X, y, _ = iris
    X_big = np.repeat(X, 20, axis=0)
    y_big = np.repeat(y, 20)
    start = threading.Barrier(4)

    def fit(C):
        start.wait()  # the fits overlap
        SoftmaxRegressionClassifier(C=C, tol=1e-12, max_iter=200).fit(X_big, y_big)

    threads = [threading.Thread(target=fit, args=(C,)) for C in (0.1, 1.0, 10.0, 1e3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [lib["num_threads"] for lib in blas.info()] == before


# -- Dask ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dask_data(iris):
    da = pytest.importorskip("dask.array")
    X, y, _ = iris
    return da.from_array(X, chunks=(50, 4)), da.from_array(y, chunks=50)


def test_failed_dask_partial_fit_leaves_the_estimator_unfitted(dask_data):
    Xd, yd = dask_data
    clf = SoftmaxRegressionClassifier(solver="sgd")
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(Xd, yd, classes=[0, 1])  # y holds class 2 too
    assert not hasattr(clf, "n_features_in_")
    with pytest.raises(NotFittedError):
        clf.predict(Xd)


@pytest.mark.parametrize(
    "method", ["predict", "predict_proba", "predict_log_proba", "decision_function"]
)
def test_predictions_on_dask_arrays_are_lazy_and_equal(dask_data, iris, method):
    da = pytest.importorskip("dask.array")
    X, y, _ = iris
    Xd, _ = dask_data
    clf = SoftmaxRegressionClassifier().fit(X, y)
    out = getattr(clf, method)(Xd)
    assert isinstance(out, da.Array)
    assert_array_equal(out.compute(), getattr(clf, method)(X))


def test_soft_labels_on_dask_equal_the_in_memory_fit(dask_data, iris):
    da = pytest.importorskip("dask.array")
    X, y, Y = iris
    Xd, _ = dask_data
    ours = _quiet(SoftmaxRegressionClassifier(tol=1e-10).fit, Xd, da.from_array(Y))
    ref = SoftmaxRegressionClassifier(tol=1e-10).fit(X, Y)
    assert_allclose(ours.coef_, ref.coef_, rtol=1e-6, atol=1e-8)


# -- what is stored is in the input's namespace --------------------------------------


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_fitted_attributes_and_optimizer_state_follow_the_input(iris, solver):
    """The optimizer state kept for partial_fit lives where the input lives,
    so a model fitted from NumPy pickles without any GPU library, and one
    fitted on another namespace and device keeps its state there."""
    xps = pytest.importorskip("array_api_strict")
    X, y, _ = iris
    dev = xps.Device("device1")
    Xs, ys = xps.asarray(X, device=dev), xps.asarray(y, device=dev)
    fitted = _quiet(SoftmaxRegressionClassifier(solver=solver, max_iter=3).fit, Xs, ys)
    numpy_fit = _quiet(SoftmaxRegressionClassifier(solver=solver, max_iter=3).fit, X, y)
    moments = fitted._optimizer_state["moments"]
    arrays = list(moments) if solver == "sgd" else [*moments[0], *moments[1]]
    assert arrays and all(a.device == dev for a in arrays)
    for name in ("coef_", "intercept_"):
        assert getattr(fitted, name).device == dev
    moments = numpy_fit._optimizer_state["moments"]
    arrays = list(moments) if solver == "sgd" else [*moments[0], *moments[1]]
    assert all(isinstance(a, np.ndarray) for a in arrays)
    # partial_fit continues from the stored state on its device.
    fitted.partial_fit(Xs, ys)
    assert fitted.coef_.device == dev


@pytest.mark.gpu
def test_a_cupyx_sparse_matrix_is_accepted():
    import cupy
    import cupyx.scipy.sparse as cusp
    import scipy.sparse as sp

    X, y = make_classification(n_samples=300, n_features=20, random_state=0)
    X[np.abs(X) < 1] = 0.0
    Xc = cusp.csr_matrix(sp.csr_matrix(X))
    ours = SoftmaxRegressionClassifier(tol=1e-8).fit(Xc, cupy.asarray(y))
    ref = SoftmaxRegressionClassifier(tol=1e-8).fit(sp.csr_matrix(X), y)
    assert_allclose(cupy.asnumpy(ours.coef_), ref.coef_, rtol=1e-6, atol=1e-8)


# -- a failed fit of any input kind keeps the earlier model ----------------------------


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("kind", ["dask", "memmap"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_an_interrupted_fit_keeps_the_earlier_model(iris, tmp_path, kind, method):
    from sklearn import config_context

    X, y, _ = iris
    if kind == "dask":
        da = pytest.importorskip("dask.array")
        Xk, yk = da.from_array(X, chunks=(50, 4)), da.from_array(y, chunks=50)
    else:
        np.save(tmp_path / "X.npy", X)
        Xk, yk = np.load(tmp_path / "X.npy", mmap_mode="r"), y
    # batch_size=10: a memmap of 150 rows streams in blocks of 30 rows.
    clf = SoftmaxRegressionClassifier(
        solver="sgd", max_iter=5, batch_size=10, random_state=0
    )
    _quiet(clf.fit, X, y)
    before = {
        k: (v.copy() if isinstance(v, np.ndarray) else v)
        for k, v in vars(clf).items()
        if not k.startswith("_")
    }
    # fit: interrupted in its second epoch; partial_fit: in its only one.
    stop_at = 2 if method == "fit" else clf.n_iter_ + 1

    def interrupt(estimator, info):
        if info["iteration"] >= stop_at:
            raise _Interrupt

    clf.set_params(callback=interrupt)
    call = (
        (lambda: clf.fit(Xk, yk))
        if method == "fit"
        else (lambda: clf.partial_fit(Xk, yk))
    )
    with config_context(working_memory=0.001), pytest.raises(_Interrupt):
        _quiet(call)
    for key, value in before.items():
        if isinstance(value, np.ndarray):
            assert_array_equal(getattr(clf, key), value)
        elif key != "callback":
            assert getattr(clf, key) == value, key


def test_numpy_scalar_parameters_work_on_array_api_input(iris):
    xps = pytest.importorskip("array_api_strict")
    X, y, _ = iris
    params = dict(
        C=np.float64(0.5), l1_ratio=np.float64(0.5), label_smoothing=np.float32(0.1)
    )
    ours = SoftmaxRegressionClassifier(**params).fit(xps.asarray(X), xps.asarray(y))
    ref = SoftmaxRegressionClassifier(**{k: float(v) for k, v in params.items()})
    ref.fit(X, y)
    assert_allclose(np.asarray(ours.predict_proba(X)), ref.predict_proba(X), atol=1e-8)
