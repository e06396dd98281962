"""Array-agnostic, numerically stable information tools from the softmax
regression chapter: softmax, log-softmax, log-sum-exp, entropy and
cross-entropy. They accept NumPy, CuPy, torch or any Array API array and
return results in the same namespace; the estimator uses the same functions.
"""

from ._functional import cross_entropy, entropy, log_softmax, logsumexp, softmax

__all__ = ["cross_entropy", "entropy", "log_softmax", "logsumexp", "softmax"]
