"""Update rules of the minibatch solvers: :class:`SGD` and :class:`Adam`.

Each is a small object with one ``update(params, grads, xp)`` method, as in
scikit-learn's ``_stochastic_optimizers.py``; nothing inside an update asks
which solver it is. The parameter names and formulas are MLPClassifier's.

Both keep their whole state (moments, step count, learning rate, iterate
average) in the dict ``state``, which survives between ``partial_fit`` calls
and travels between chunks (``_chunked._map_state`` moves its arrays).

``l1 > 0`` adds ``l1 * ||W||_1`` and ``l2 > 0`` adds ``l2 / 2 * ||W||^2``
(each a scalar or a (d,) vector of per-feature weights) to the objective the
gradients come from: each update of ``W`` ends with the proximal step of
these terms in the metric of the step (soft threshold, then shrinkage),
which gives exact zeros and stays stable however strong the L2 term is in a
coordinate (the preconditioned variables make it ``alpha / s_j^2``).

``average=True`` keeps the polynomial-decay average of the iterates
(Shamir and Zhang, 2013), ``avg_t = avg_{t-1} + (x_t - avg_{t-1}) (eta + 1) /
(t + eta)``: a weighted mean in which the last half of the steps carries most
of the weight, so a constant step ends near the optimum rather than in the
noise ball around it, without a horizon fixed in advance.

Three paths compute the same update: on NumPy in place (``_step_in_place``);
on CuPy in place through one fused kernel per minibatch
(:mod:`sksoftmax._cupy_kernels`, state arrays reused across minibatches);
on any other namespace with new arrays from the Array API's operations
(``_steps``). The NumPy path is the reference the others are tested against.
"""

import math

import numpy as np

from .._backend import (
    asarray_like,
    device,
    is_cupy_namespace,
    is_numpy_namespace,
    on_device,
)
from .._penalty import soft_threshold

__all__ = ["SGD", "Adam", "make_optimizer"]

# Polynomial-decay averaging: weight ~ t^eta, the first half of a run keeps
# about 2^-(eta+1) of the weight.
AVERAGE_ETA = 3.0


class _Optimizer:
    """State handling, averaging and the L1 term shared by the update rules."""

    def __init__(
        self, learning_rate_init, *, l1=0.0, l2=0.0, average=False, state=None
    ):
        if isinstance(learning_rate_init, str):
            raise ValueError(
                f"learning_rate_init={learning_rate_init!r} must be resolved to a "
                "number from the data before the optimizer is built."
            )
        self.learning_rate_init = learning_rate_init
        self.l1 = l1
        self.l2 = l2
        self.has_l1, self.has_l2 = bool(np.any(l1)), bool(np.any(l2))
        self.has_prox = self.has_l1 or self.has_l2
        self.average = average
        self.state = (
            dict(state)
            if state is not None
            else {
                "lr": learning_rate_init,
                "t": 0,
                "moments": None,
                "samples_seen": 0,
            }
        )
        self._owns_arrays = state is None
        self._device_weights = {}

    def __getstate__(self):
        # Device copies of the penalty weights stay where they were made.
        return {**self.__dict__, "_device_weights": {}}

    @property
    def learning_rate(self):
        return self.state["lr"]

    def _weights(self, w, W, xp):
        """Penalty weights ``w`` as a scalar or a (1, d) array in W's namespace."""
        if np.ndim(w) == 0:
            return w
        if is_numpy_namespace(xp):
            return np.asarray(w, dtype=W.dtype)[None, :]
        return asarray_like(w, W, xp=xp)[None, :]

    def _prox_step(self, W_new, step, xp):
        """Proximal map of ``step * (l1 |W| + l2 / 2 W^2)``, ``step`` a scalar
        or an array like ``W``."""
        W = W_new
        if self.has_l1:
            W = soft_threshold(W, step * self._weights(self.l1, W, xp), xp)
        if self.has_l2:
            W = W / (1.0 + step * self._weights(self.l2, W, xp))
        return W

    def update(self, params, grads, xp):
        """Return the parameters after one step on the minibatch gradients.

        On NumPy the parameters, moments and average are updated in place
        (the same list comes back): a minibatch step is a few microseconds of
        arithmetic on (k, d) arrays, where allocations and copies show. On
        CuPy too, in one fused kernel launch (:meth:`_fused_update`).
        """
        if is_cupy_namespace(xp):
            with on_device(params[0]):
                self._prepare_state(params, xp)
                self._fused_update(params, grads, xp)
            return params
        self._prepare_state(params, xp)
        if is_numpy_namespace(xp):
            self._step_in_place(params, grads)
            if self.has_prox:
                params[0][...] = self._prox(params[0], xp)
        else:
            params = [
                p + s for p, s in zip(params, self._steps(grads, xp), strict=True)
            ]
            if self.has_prox:
                params[0] = self._prox(params[0], xp)
        if self.average:
            self._accumulate(params, xp)
        return params

    def _prepare_state(self, params, xp):
        """Make the moments on the first step; copy state handed in by
        ``partial_fit`` before a path that writes it in place, so that the
        estimator's stored state changes only on success."""
        st = self.state
        if st["moments"] is None:
            st["moments"] = self._new_moments(params, xp)
        elif not self._owns_arrays and (
            is_numpy_namespace(xp) or is_cupy_namespace(xp)
        ):
            st["moments"] = _copy_tree(st["moments"])
            if st.get("average") is not None:
                st["average"] = [a.copy() for a in st["average"]]
        self._owns_arrays = True

    def _next_average_weight(self):
        """Count one more averaged iterate; its weight ``(eta+1)/(n+eta)``."""
        n = self.state.get("n_averaged", 0) + 1
        self.state["n_averaged"] = n
        return n, (AVERAGE_ETA + 1.0) / (n + AVERAGE_ETA)

    def _fused_extras(self, params, xp):
        """The keyword arguments that the fused kernels of both rules share:
        the penalty weights on the device and the averaging slot (arrays,
        mode 0 none / 1 start / 2 update, weight)."""
        W = params[0]
        key = (str(device(W)), W.dtype.name)
        weights = self._device_weights.get(key)
        if weights is None:
            from .._cupy_kernels import device_weights

            weights = tuple(
                device_weights(w, W) if np.any(w) else None for w in (self.l1, self.l2)
            )
            self._device_weights[key] = weights
        extras = {"l1": weights[0], "l2": weights[1]}
        if self.average:
            st = self.state
            n, w = self._next_average_weight()
            if st.get("average") is None or n == 1:
                st["average"] = [xp.empty_like(p) for p in params]
                mode = 1
            else:
                mode = 2
            extras.update(average=st["average"], average_mode=mode, average_weight=w)
        return extras

    def _accumulate(self, params, xp):
        st = self.state
        n, w = self._next_average_weight()
        if st.get("average") is None or n == 1:
            # np.asarray has no copy= before NumPy 2.
            st["average"] = [
                np.array(p) if is_numpy_namespace(xp) else xp.asarray(p, copy=True)
                for p in params
            ]
        elif is_numpy_namespace(xp):
            for a, p in zip(st["average"], params, strict=True):
                a += w * (p - a)
        else:
            st["average"] = [
                a + w * (p - a) for a, p in zip(st["average"], params, strict=True)
            ]

    def penalty(self, W, xp):
        """``sum l1 |W|``, the part of J the minibatch objective does not
        report (the L2 term's value is in each minibatch's J, as the epoch's
        mean; only its gradient is left to the proximal step)."""
        if not self.has_l1:
            return 0.0
        return float(xp.sum(xp.abs(W) * self._weights(self.l1, W, xp)))

    def end_epoch(self, n_samples):
        """Count the samples of the epoch just run."""
        self.state["samples_seen"] += n_samples

    def should_stop(self):
        """No improvement for long enough: stop."""
        return True

    def restart(self):
        """Called when the exact objective rose over an epoch of one step
        (:func:`~sksoftmax._solvers.minibatch.run_epochs`). Adam keeps its
        moments: they scale its steps rather than carry them on."""


def _copy_tree(moments):
    if isinstance(moments, tuple):
        return tuple([m.copy() for m in ms] for ms in moments)
    return [v.copy() for v in moments]


class SGD(_Optimizer):
    """Minibatch SGD with (Nesterov's) momentum and MLPClassifier's schedules
    ``constant``, ``invscaling`` and ``adaptive``. ``state["moments"]`` is the
    list of velocities."""

    def __init__(
        self,
        learning_rate_init,
        *,
        learning_rate="constant",
        power_t=0.5,
        momentum=0.9,
        nesterovs_momentum=True,
        l1=0.0,
        l2=0.0,
        average=False,
        state=None,
    ):
        super().__init__(learning_rate_init, l1=l1, l2=l2, average=average, state=state)
        self.schedule = learning_rate
        self.power_t = power_t
        self.momentum = momentum
        self.nesterov = nesterovs_momentum

    def _new_moments(self, params, xp):
        return [xp.zeros_like(p) for p in params]

    def _steps(self, grads, xp):
        st = self.state
        lr, mu = st["lr"], self.momentum
        vel = [mu * v - lr * g for v, g in zip(st["moments"], grads, strict=True)]
        st["moments"] = vel
        if self.nesterov and mu:
            return [mu * v - lr * g for v, g in zip(vel, grads, strict=True)]
        return vel

    def _step_in_place(self, params, grads):
        lr, mu = self.state["lr"], self.momentum
        for p, v, g in zip(params, self.state["moments"], grads, strict=True):
            v *= mu
            v -= lr * g
            if self.nesterov and mu:
                p += mu * v
                p -= lr * g
            else:
                p += v

    def _prox_factor(self):
        # The step holds the current gradient times c * lr (c = 1 + momentum
        # with Nesterov) and the velocity holds it times lr: the L1 term
        # enters both the same way, through its prox. Then the fixed points
        # are the optimum's, and a coordinate held at zero builds up no
        # velocity that would push it off zero again.
        return 1.0 + self.momentum if self.nesterov and self.momentum else 1.0

    def _prox(self, W_new, xp):
        st = self.state
        c = self._prox_factor()
        W = self._prox_step(W_new, c * st["lr"], xp)
        st["moments"][0] = st["moments"][0] + (W - W_new) / c
        return W

    def restart(self):
        """Drop the velocities: the next step is a plain gradient step."""
        moments = self.state.get("moments")
        if moments is not None:
            # NumPy between epochs (chunk_pass hands the state back on the host)
            self.state["moments"] = [np.zeros_like(v) for v in moments]

    def _fused_update(self, params, grads, xp):
        """:meth:`_step_in_place`, :meth:`_prox` and the average in one
        launch (:func:`sksoftmax._cupy_kernels.sgd_update`)."""
        from .._cupy_kernels import sgd_update

        sgd_update(
            params,
            self.state["moments"],
            grads,
            lr=self.state["lr"],
            momentum=self.momentum,
            nesterov=bool(self.nesterov and self.momentum),
            prox_factor=self._prox_factor(),
            **self._fused_extras(params, xp),
        )

    def end_epoch(self, n_samples):
        """Advance the ``invscaling`` schedule by the samples just seen."""
        super().end_epoch(n_samples)
        st = self.state
        if self.schedule == "invscaling":
            st["lr"] = (
                self.learning_rate_init / (st["samples_seen"] + 1) ** self.power_t
            )

    def should_stop(self):
        """Stop, or (``adaptive``) divide the learning rate by 5 and go on
        while it stays above 1e-6."""
        if self.schedule != "adaptive" or self.state["lr"] <= 1e-6:
            return True
        self.state["lr"] /= 5.0
        return False


class Adam(_Optimizer):
    """Adam (Kingma and Ba) as in MLPClassifier. ``state["moments"]`` is the
    pair (first moments, second moments); ``state["t"]`` the step count."""

    def __init__(
        self,
        learning_rate_init,
        *,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        l1=0.0,
        l2=0.0,
        average=False,
        state=None,
    ):
        super().__init__(learning_rate_init, l1=l1, l2=l2, average=average, state=state)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _new_moments(self, params, xp):
        return ([xp.zeros_like(p) for p in params], [xp.zeros_like(p) for p in params])

    def _bias_corrected_lr(self):
        st = self.state
        st["t"] += 1
        b1, b2, t = self.beta_1, self.beta_2, st["t"]
        return self.learning_rate_init * math.sqrt(1 - b2**t) / (1 - b1**t)

    def _steps(self, grads, xp):
        st = self.state
        b1, b2 = self.beta_1, self.beta_2
        ms = [
            b1 * m + (1 - b1) * g for m, g in zip(st["moments"][0], grads, strict=True)
        ]
        vs = [
            b2 * v + (1 - b2) * (g * g)
            for v, g in zip(st["moments"][1], grads, strict=True)
        ]
        st["moments"] = (ms, vs)
        lr = self._bias_corrected_lr()
        return [
            -lr * m / (xp.sqrt(v) + self.epsilon) for m, v in zip(ms, vs, strict=True)
        ]

    def _step_in_place(self, params, grads):
        b1, b2 = self.beta_1, self.beta_2
        lr = self._bias_corrected_lr()
        for p, m, v, g in zip(params, *self.state["moments"], grads, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            g2 = np.multiply(g, g)
            g2 *= 1 - b2
            v += g2
            np.sqrt(v, out=g2)
            g2 += self.epsilon
            np.divide(m, g2, out=g2)
            g2 *= lr
            p -= g2

    def _prox_scale(self):
        # Adam's step is lr0 * m_hat / (sqrt(v_hat) + eps'): the same diagonal
        # scaling applied to the L1 subgradient gives a per-coordinate
        # threshold, this scale over sqrt(v) + eps.
        return self.learning_rate_init * math.sqrt(1 - self.beta_2 ** self.state["t"])

    def _prox(self, W_new, xp):
        v = self.state["moments"][1][0]
        step = self._prox_scale() / (xp.sqrt(v) + self.epsilon)
        return self._prox_step(W_new, step, xp)

    def _fused_update(self, params, grads, xp):
        """:meth:`_step_in_place`, :meth:`_prox` and the average in one
        launch (:func:`sksoftmax._cupy_kernels.adam_update`)."""
        from .._cupy_kernels import adam_update

        lr = self._bias_corrected_lr()
        first, second = self.state["moments"]
        adam_update(
            params,
            first,
            second,
            grads,
            lr=lr,
            beta_1=self.beta_1,
            beta_2=self.beta_2,
            epsilon=self.epsilon,
            prox_scale=self._prox_scale(),
            **self._fused_extras(params, xp),
        )


_RULES = {"sgd": SGD, "adam": Adam}
_OPTIONS = {
    "sgd": ("learning_rate", "power_t", "momentum", "nesterovs_momentum"),
    "adam": ("beta_1", "beta_2", "epsilon"),
}


def make_optimizer(
    solver, *, learning_rate_init, state=None, l1=0.0, l2=0.0, **options
):
    """The update rule of ``solver`` ("sgd" or "adam") from the estimator's
    parameters; options that belong to the other rule (e.g. ``momentum`` for
    Adam) are ignored, as MLPClassifier ignores them."""
    if solver not in _RULES:
        raise ValueError(f"solver must be 'sgd' or 'adam', got {solver!r}.")
    mine = {k: v for k, v in options.items() if k in _OPTIONS[solver]}
    unknown = set(options) - set(_OPTIONS["sgd"]) - set(_OPTIONS["adam"]) - {"average"}
    if unknown:
        raise TypeError(f"Unknown optimizer options: {sorted(unknown)}.")
    return _RULES[solver](
        learning_rate_init,
        l1=l1,
        l2=l2,
        average=options.get("average", False),
        state=state,
        **mine,
    )
