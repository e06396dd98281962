"""The update rules of minibatch SGD (momentum, Nesterov) and Adam.

The epoch loop that drives them is :mod:`sksoftmax._solvers.minibatch`.
The updates follow MLPClassifier's definitions of the same parameter names.
"""

import math

import numpy as np

from .._backend import (
    is_numpy_namespace,
)
from .._penalty import l1_norm, soft_threshold


class MinibatchOptimizer:
    """Update rule and its state for ``solver`` in {"sgd", "adam"}.

    ``state`` (velocities or Adam moments, the step count and the current
    learning rate) survives between ``partial_fit`` calls.

    ``l1 > 0`` adds ``l1 * ||W||_1``: each update of ``W`` ends with a
    proximal (soft-threshold) step scaled as the gradient step was, which
    gives exact zeros.
    """

    def __init__(
        self,
        solver,
        *,
        learning_rate_init,
        learning_rate="constant",
        power_t=0.5,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        state=None,
        l1=0.0,
    ):
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.schedule = learning_rate
        self.power_t = power_t
        self.momentum = momentum
        self.nesterov = nesterovs_momentum
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.l1 = l1
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
        self._owns_moments = state is None

    @property
    def learning_rate(self):
        return self.state["lr"]

    def _zeros(self, params, xp):
        return [xp.zeros_like(p) for p in params]

    def update(self, params, grads, xp):
        """Return the parameters after one step on the minibatch gradients.

        On NumPy the parameters and moments are updated in place (the same
        list comes back): a minibatch step is a few microseconds of
        arithmetic on (k, d) arrays, where allocations and copies show.
        """
        st = self.state
        if st["moments"] is None:
            st["moments"] = (
                self._zeros(params, xp)
                if self.solver == "sgd"
                else (self._zeros(params, xp), self._zeros(params, xp))
            )
        elif not self._owns_moments and is_numpy_namespace(xp):
            # Moments handed in by partial_fit: copy before writing in place,
            # so that the estimator's stored state changes only on success.
            st["moments"] = (
                [v.copy() for v in st["moments"]]
                if self.solver == "sgd"
                else tuple([m.copy() for m in ms] for ms in st["moments"])
            )
        self._owns_moments = True
        if is_numpy_namespace(xp):
            self._update_in_place(params, grads)
            if self.l1:
                params[0][...] = self._prox(params[0], xp)
            return params
        if self.solver == "sgd":
            lr, mu = st["lr"], self.momentum
            vel = [mu * v - lr * g for v, g in zip(st["moments"], grads, strict=False)]
            st["moments"] = vel
            steps = (
                [mu * v - lr * g for v, g in zip(vel, grads, strict=False)]
                if self.nesterov and mu
                else vel
            )
        else:
            st["t"] += 1
            b1, b2, t = self.beta_1, self.beta_2, st["t"]
            ms = [
                b1 * m + (1 - b1) * g
                for m, g in zip(st["moments"][0], grads, strict=False)
            ]
            vs = [
                b2 * v + (1 - b2) * (g * g)
                for v, g in zip(st["moments"][1], grads, strict=False)
            ]
            st["moments"] = (ms, vs)
            lr = self.learning_rate_init * math.sqrt(1 - b2**t) / (1 - b1**t)
            steps = [
                -lr * m / (xp.sqrt(v) + self.epsilon)
                for m, v in zip(ms, vs, strict=False)
            ]
        new = [p + s for p, s in zip(params, steps, strict=False)]
        if self.l1:
            new[0] = self._prox(new[0], xp)
        return new

    def _prox(self, W_new, xp):
        """Soft-threshold ``W`` after a step, in the metric of that step."""
        st = self.state
        if self.solver == "sgd":
            # The step holds the current gradient times c * lr (c = 1 + momentum
            # with Nesterov) and the velocity holds it times lr: the L1 term
            # enters both the same way, through its prox. Then the fixed points
            # are the optimum's, and a coordinate held at zero builds up no
            # velocity that would push it off zero again.
            c = 1.0 + self.momentum if self.nesterov and self.momentum else 1.0
            W = soft_threshold(W_new, c * st["lr"] * self.l1, xp)
            st["moments"][0] = st["moments"][0] + (W - W_new) / c
            return W
        # Adam's step is lr0 * m_hat / (sqrt(v_hat) + eps'): the same diagonal
        # scaling applied to the L1 subgradient gives a per-coordinate threshold.
        v = st["moments"][1][0]
        scale = self.learning_rate_init * math.sqrt(1 - self.beta_2 ** st["t"])
        return soft_threshold(W_new, scale * self.l1 / (xp.sqrt(v) + self.epsilon), xp)

    def penalty(self, W, xp):
        """``l1 * ||W||_1``, the part of J the loss does not see."""
        return self.l1 * l1_norm(W, xp) if self.l1 else 0.0

    def _update_in_place(self, params, grads):
        """The same updates as :meth:`update`, in place on NumPy arrays."""
        st = self.state
        if self.solver == "sgd":
            lr, mu = st["lr"], self.momentum
            for p, v, g in zip(params, st["moments"], grads, strict=True):
                v *= mu
                v -= lr * g
                if self.nesterov and mu:
                    p += mu * v
                    p -= lr * g
                else:
                    p += v
            return
        st["t"] += 1
        b1, b2, t = self.beta_1, self.beta_2, st["t"]
        lr = self.learning_rate_init * math.sqrt(1 - b2**t) / (1 - b1**t)
        for p, m, v, g in zip(params, *st["moments"], grads, strict=True):
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

    def end_epoch(self, n_samples):
        """Advance the ``invscaling`` schedule by the samples just seen."""
        st = self.state
        st["samples_seen"] += n_samples
        if self.solver == "sgd" and self.schedule == "invscaling":
            st["lr"] = (
                self.learning_rate_init / (st["samples_seen"] + 1) ** self.power_t
            )

    def should_stop(self):
        """No improvement for long enough: stop, or (``adaptive``) divide the
        learning rate by 5 and go on while it stays above 1e-6."""
        if self.solver != "sgd" or self.schedule != "adaptive":
            return True
        if self.state["lr"] <= 1e-6:
            return True
        self.state["lr"] /= 5.0
        return False
