"""softmax, log_softmax, logsumexp, entropy and cross_entropy against
scipy.special / scipy.stats, on NumPy and on array_api_strict."""

import math

import numpy as np
import pytest
import scipy.special
import scipy.stats
from numpy.testing import assert_allclose

from sksoftmax.functional import (
    cross_entropy,
    entropy,
    log_softmax,
    logsumexp,
    softmax,
)


def _numpy():
    return np


def _strict():
    return pytest.importorskip("array_api_strict")


@pytest.fixture(params=[_numpy, _strict], ids=["numpy", "array_api_strict"])
def xp(request):
    return request.param()


@pytest.fixture(params=[np.float64, np.float32], ids=["float64", "float32"])
def dtype(request):
    return request.param


def rtol_for(dtype):
    return 1e-12 if dtype == np.float64 else 2e-6


def to_xp(a, xp, dtype=None):
    a = np.asarray(a, dtype=dtype)
    return a if xp is np else xp.asarray(a)


def to_np(a, xp):
    """Back to NumPy, checking the result stayed in the input's namespace."""
    if xp is np:
        assert isinstance(a, (np.ndarray, np.generic))
        return np.asarray(a)
    assert type(a).__module__.startswith("array_api_strict"), type(a)
    return np.from_dlpack(a)


def logits(dtype, shape=(7, 5), seed=0, scale=4.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape).astype(dtype)


def distributions(shape=(7, 5), seed=1, with_zeros=True):
    p = np.random.default_rng(seed).dirichlet(np.ones(shape[-1]), size=shape[0])
    if with_zeros:  # zero entries: the p log p = 0 limit must be used
        p[0, :2] = 0.0
        p[1] = np.eye(shape[-1])[3]
        p /= p.sum(axis=1, keepdims=True)
    return p


AXES = pytest.mark.parametrize("axis", [-1, 0], ids=["axis=-1", "axis=0"])


# ------------------------------------------------------------- vs SciPy


@AXES
def test_softmax_matches_scipy(xp, dtype, axis):
    x = logits(dtype)
    out = softmax(to_xp(x, xp), axis=axis)
    got = to_np(out, xp)
    assert got.dtype == dtype
    assert_allclose(
        got,
        scipy.special.softmax(x.astype(np.float64), axis=axis),
        rtol=rtol_for(dtype),
        atol=1e-7 if dtype == np.float32 else 0,
    )
    assert_allclose(got.sum(axis=axis), 1.0, rtol=rtol_for(dtype))


@pytest.mark.parametrize("temperature", [0.25, 3.0])
def test_softmax_temperature_divides_the_logits(xp, temperature):
    x = logits(np.float64)
    got = to_np(softmax(to_xp(x, xp), temperature=temperature), xp)
    assert_allclose(got, scipy.special.softmax(x / temperature, axis=-1), rtol=1e-12)


@AXES
def test_log_softmax_matches_scipy(xp, dtype, axis):
    x = logits(dtype)
    got = to_np(log_softmax(to_xp(x, xp), axis=axis), xp)
    assert got.dtype == dtype
    assert_allclose(
        got,
        scipy.special.log_softmax(x.astype(np.float64), axis=axis),
        rtol=rtol_for(dtype),
        atol=1e-5 if dtype == np.float32 else 0,
    )


@AXES
@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keepdims"])
def test_logsumexp_matches_scipy(xp, dtype, axis, keepdims):
    x = logits(dtype)
    got = to_np(logsumexp(to_xp(x, xp), axis=axis, keepdims=keepdims), xp)
    expected = scipy.special.logsumexp(
        x.astype(np.float64), axis=axis, keepdims=keepdims
    )
    assert got.shape == expected.shape and got.dtype == dtype
    assert_allclose(got, expected, rtol=rtol_for(dtype))


@AXES
@pytest.mark.parametrize("base", [None, 2], ids=["nats", "bits"])
def test_entropy_matches_scipy_stats(xp, axis, base):
    p = distributions()
    if axis == 0:
        p = p.T.copy()
    got = to_np(entropy(to_xp(p, xp), axis=axis, base=base), xp)
    expected = scipy.stats.entropy(p, base=base, axis=axis)
    assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    # the one-hot row has zero entropy (needs 0 log 0 = 0, not NaN)
    assert np.all(np.isfinite(got))


def test_entropy_closed_forms(xp):
    K = 8
    uniform = np.full((1, K), 1.0 / K)
    assert_allclose(to_np(entropy(to_xp(uniform, xp)), xp), [math.log(K)], rtol=1e-14)
    assert_allclose(to_np(entropy(to_xp(uniform, xp), base=2), xp), [3.0], rtol=1e-14)
    onehot = np.eye(K)[[2]]
    assert_allclose(to_np(entropy(to_xp(onehot, xp)), xp), [0.0], atol=0)


@AXES
@pytest.mark.parametrize("base", [None, 2], ids=["nats", "bits"])
def test_cross_entropy_matches_scipy(xp, dtype, axis, base):
    t = distributions()
    o = logits(dtype)
    if axis == 0:
        t, o = t.T.copy(), o.T.copy()
    got = to_np(
        cross_entropy(to_xp(t, xp, dtype), to_xp(o, xp), axis=axis, base=base), xp
    )
    assert got.dtype == dtype
    q = scipy.special.softmax(o.astype(np.float64), axis=axis)
    # H(t, q) = H(t) + KL(t || q), both from scipy.stats.
    expected = scipy.stats.entropy(t, base=base, axis=axis) + scipy.stats.entropy(
        t, q, base=base, axis=axis
    )
    assert_allclose(
        got,
        expected,
        rtol=10 * rtol_for(dtype),
        atol=1e-5 if dtype == np.float32 else 1e-12,
    )
    direct = -np.sum(
        t * scipy.special.log_softmax(o.astype(np.float64), axis=axis), axis=axis
    )
    assert_allclose(
        got,
        direct / (1.0 if base is None else math.log(base)),
        rtol=rtol_for(dtype),
        atol=1e-5 if dtype == np.float32 else 0,
    )


def test_cross_entropy_of_onehot_target_is_minus_log_softmax(xp):
    o = logits(np.float64)
    codes = np.arange(7) % 5
    t = np.eye(5)[codes]
    got = to_np(cross_entropy(to_xp(t, xp), to_xp(o, xp)), xp)
    expected = -scipy.special.log_softmax(o, axis=1)[np.arange(7), codes]
    assert_allclose(got, expected, rtol=1e-12)


# ------------------------------------------------------- numerical extremes


HUGE = pytest.mark.parametrize(
    "dtype,big",
    [(np.float32, 1e4), (np.float64, 1e300)],
    ids=["float32-1e4", "float64-1e300"],
)


def huge_logits(dtype, big):
    return np.array(
        [[big, -big, 0.0], [-big, -big, -big], [big, big, -big], [0.0, 1.0, -big]],
        dtype=dtype,
    )


@HUGE
def test_huge_logits_softmax_is_finite(xp, dtype, big):
    x = huge_logits(dtype, big)
    p = to_np(softmax(to_xp(x, xp)), xp)
    assert p.dtype == dtype and np.all(np.isfinite(p))
    expected = np.array(
        [
            [1, 0, 0],
            [1 / 3, 1 / 3, 1 / 3],
            [0.5, 0.5, 0],
            [1 / (1 + np.e), np.e / (1 + np.e), 0],
        ]
    )
    assert_allclose(p, expected, rtol=1e-6, atol=1e-30)


@HUGE
def test_huge_logits_log_softmax_and_logsumexp_are_finite(xp, dtype, big):
    x = huge_logits(dtype, big)
    lse = to_np(logsumexp(to_xp(x, xp)), xp)
    lsm = to_np(log_softmax(to_xp(x, xp)), xp)
    assert np.all(np.isfinite(lse)) and np.all(np.isfinite(lsm))
    expected_lse = [big, -big + math.log(3), big + math.log(2), math.log(1 + math.e)]
    assert_allclose(lse, expected_lse, rtol=1e-6)
    # the largest logit of each row keeps a log-probability near 0
    assert_allclose(
        lsm.max(axis=1),
        [0.0, -math.log(3), -math.log(2), -math.log(1 + math.e) + 1],
        atol=1e-6,
    )
    assert lsm[0, 1] == pytest.approx(-2 * big, rel=1e-6)


@HUGE
def test_huge_logits_cross_entropy_and_entropy_are_finite(xp, dtype, big):
    x = huge_logits(dtype, big)
    t = np.eye(3, dtype=dtype)[[0, 1, 2, 1]]
    ce = to_np(cross_entropy(to_xp(t, xp), to_xp(x, xp)), xp)
    assert np.all(np.isfinite(ce))
    # row 0: target class 0 holds all the mass (CE 0); row 2: target class 2
    # has logit -big against 2 * exp(big): CE = 2 big + log 2.
    assert_allclose(
        ce,
        [0.0, math.log(3), 2 * big + math.log(2), math.log(1 + math.e) - 1.0],
        rtol=1e-6,
        atol=1e-6,
    )
    p = softmax(to_xp(x, xp))
    h = to_np(entropy(p), xp)
    assert np.all(np.isfinite(h))
    assert_allclose(h[:3], [0.0, math.log(3), math.log(2)], atol=1e-6)


def test_rows_of_minus_inf_entries(xp):
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, 2.0, -np.inf]])
    got = to_np(softmax(to_xp(x, xp)), xp)
    assert_allclose(got, scipy.special.softmax(x, axis=1), rtol=1e-14)
    lsm = to_np(log_softmax(to_xp(x, xp)), xp)
    assert_allclose(lsm, scipy.special.log_softmax(x, axis=1), rtol=1e-14)


# ------------------------------------------------------------- invariance


@pytest.mark.parametrize("shift_scale", [1.0, 1e3], ids=["small-shift", "large-shift"])
def test_invariance_to_a_constant_per_row(xp, shift_scale):
    x = logits(np.float64)
    c = np.random.default_rng(5).normal(scale=shift_scale, size=(7, 1))
    t = distributions(with_zeros=False)
    X, Xc = to_xp(x, xp), to_xp(x + c, xp)
    assert_allclose(
        to_np(softmax(Xc), xp), to_np(softmax(X), xp), rtol=1e-10, atol=1e-15
    )
    assert_allclose(
        to_np(log_softmax(Xc), xp),
        to_np(log_softmax(X), xp),
        rtol=1e-10,
        atol=1e-12 * shift_scale,
    )
    assert_allclose(
        to_np(logsumexp(Xc), xp), to_np(logsumexp(X), xp) + c[:, 0], rtol=1e-12
    )
    T = to_xp(t, xp)
    assert_allclose(
        to_np(cross_entropy(T, Xc), xp),
        to_np(cross_entropy(T, X), xp),
        rtol=1e-9,
        atol=1e-12 * shift_scale,
    )
