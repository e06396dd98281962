"""Every difference between the supported versions of the dependencies.

The supported range is declared in ``pyproject.toml``; ``MINIMUM_VERSIONS``
repeats its lower bounds (a test keeps the two equal) and CI's second job runs
the whole test suite with exactly these versions installed. Any behaviour that
depends on a version is decided here, and only here: the rest of the package
and the tests import the answer.

This module imports nothing from scikit-learn at import time, so that
:func:`check_dependency_versions` can run before anything that an old
scikit-learn would lack.
"""

import functools
import importlib.metadata
import re

__all__ = [
    "MINIMUM_VERSIONS",
    "check_dask_version",
    "check_dependency_versions",
    "from_dlpack",
    "installed_version",
    "logistic_regression_elastic_net_params",
    "parse_version",
    "skip_array_api_estimator_check",
    "skip_array_api_dispatch",
    "skip_cpu_benchmark",
    "skip_logistic_regression_cv_reference",
    "skip_onnx_standard_scaler_parity",
    "skip_temperature_calibration",
    "skip_weighted_balanced_reference",
]

# The oldest versions the package is tested on (CI's "min" job pins them).
MINIMUM_VERSIONS = {
    "scikit-learn": "1.6.1",  # validate_data, __sklearn_tags__ (1.6)
    "numpy": "1.25.0",
    "scipy": "1.11.1",  # 1.11.0 was withdrawn from PyPI
    "array-api-compat": "1.11",
    "threadpoolctl": "3.1.0",  # ThreadpoolController; scikit-learn 1.6's floor
}

# Optional: checked when a Dask collection is fitted, not at import.
# dask/distributed 2025.1-2025.3 hand a persisted chunk's key (a tuple) to the
# task that should receive the chunk itself.
MINIMUM_DASK_VERSION = "2025.4.0"


def parse_version(version):
    """The release numbers of a version string as a tuple of ints:
    ``"1.6.1" -> (1, 6, 1)``, ``"2.0.0rc1" -> (2, 0, 0)``."""
    match = re.match(r"\d+(\.\d+)*", version)
    if match is None:
        raise ValueError(f"Cannot read a version number from {version!r}.")
    return tuple(int(part) for part in match.group().split("."))


def installed_version(distribution):
    """The installed version of ``distribution`` (its PyPI name), or None."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _too_old(distribution, minimum):
    found = installed_version(distribution)
    if found is not None and parse_version(found) >= parse_version(minimum):
        return None
    found = "not installed" if found is None else f"found {found}"
    return f"{distribution}>={minimum} ({found})"


def check_dependency_versions():
    """Raise ImportError naming every dependency older than the supported
    range. Runs when ``sksoftmax`` is imported."""
    problems = [p for name, v in MINIMUM_VERSIONS.items() if (p := _too_old(name, v))]
    if problems:
        quoted = " ".join(f"'{p.split(' ')[0]}'" for p in problems)
        raise ImportError(
            "sksoftmax needs " + ", ".join(problems) + ". Upgrade with: "
            f"pip install --upgrade {quoted}"
        )


def check_dask_version():
    """Raise ImportError if the installed Dask or distributed is too old for
    fitting on Dask collections. Called before any Dask work."""
    problems = [
        p
        for name in ("dask", "distributed")
        if installed_version(name) is not None
        and (p := _too_old(name, MINIMUM_DASK_VERSION))
    ]
    if problems:
        raise ImportError(
            "Fitting on Dask collections needs " + ", ".join(problems) + "."
        )


@functools.cache
def _sklearn_version():
    import sklearn

    return parse_version(sklearn.__version__)


@functools.cache
def _numpy_version():
    import numpy

    return parse_version(numpy.__version__)


# -- NumPy -----------------------------------------------------------------------


def from_dlpack(a):
    """``np.from_dlpack(a)``. NumPy < 2 cannot export a read-only buffer through
    DLPack (BufferError), which matters for namespaces that wrap NumPy arrays
    (array_api_strict): such an array is first copied in its own namespace."""
    import numpy as np

    if _numpy_version() >= (2,):
        return np.from_dlpack(a)
    try:
        return np.from_dlpack(a)
    except BufferError:
        from array_api_compat import array_namespace

        return np.from_dlpack(array_namespace(a).asarray(a, copy=True))


# -- what the tests expect of scikit-learn ------------------------------------


def skip_array_api_dispatch():
    """None where ``config_context(array_api_dispatch=True)`` works here, else
    the reason it does not (scikit-learn needs SciPy >= 1.14 for it, and
    SCIPY_ARRAY_API=1 set before SciPy is imported)."""
    import sklearn

    try:
        with sklearn.config_context(array_api_dispatch=True):
            pass
    except ImportError as exc:
        scipy_version = installed_version("scipy")
        # scikit-learn 1.6's message leaves this placeholder unfilled
        message = str(exc).replace("{scipy.__version__}", str(scipy_version))
        return (
            f"scikit-learn {sklearn.__version__} refuses array_api_dispatch with "
            f"SciPy {scipy_version}: {message}"
        )
    return None


def skip_array_api_estimator_check(array_namespace):
    """None where scikit-learn's ``check_array_api_input`` for inputs of
    ``array_namespace`` (its name) applies to this estimator, else why not:
    before 1.9 it expects ``classes_`` in the input's namespace, while sksoftmax
    keeps ``classes_`` a NumPy array (so that string labels work), which
    scikit-learn >= 1.9 allows."""
    reason = skip_array_api_dispatch()
    if reason is not None:
        return reason
    if _sklearn_version() < (1, 9) and array_namespace != "numpy":
        return (
            "scikit-learn < 1.9's check_array_api_input expects classes_ in the "
            "input's namespace; sksoftmax keeps it in NumPy, as 1.9 allows"
        )
    return None


def skip_temperature_calibration():
    """None where ``CalibratedClassifierCV(method="temperature")`` exists."""
    if _sklearn_version() < (1, 8):
        return 'CalibratedClassifierCV(method="temperature") needs scikit-learn >= 1.8'
    return None


def skip_cpu_benchmark():
    """None where benchmarks/bench_cpu.py can run its comparison: before 1.9,
    scikit-learn's one-vs-rest ``predict_proba`` (SGDClassifier's) divides by
    zero when every class's probability underflows, and the benchmark's
    log-loss of those NaN rows fails."""
    if _sklearn_version() < (1, 9):
        return (
            "SGDClassifier.predict_proba gives NaN rows on the benchmark's data "
            "before scikit-learn 1.9"
        )
    return None


def skip_weighted_balanced_reference():
    """None where LogisticRegression's ``class_weight="balanced"`` counts the
    sample weights (scikit-learn >= 1.7); before, it counts rows."""
    if _sklearn_version() < (1, 7):
        return (
            'LogisticRegression counts sample_weight in class_weight="balanced" '
            "from scikit-learn 1.7"
        )
    return None


def skip_logistic_regression_cv_reference():
    """None where ``LogisticRegressionCV(use_legacy_attributes=False)``, the
    layout SoftmaxRegressionCV is compared with, exists (scikit-learn >= 1.8)."""
    if _sklearn_version() < (1, 8):
        return (
            "LogisticRegressionCV(use_legacy_attributes=False) needs "
            "scikit-learn >= 1.8"
        )
    return None


def skip_onnx_standard_scaler_parity():
    """None where an exported StandardScaler + sksoftmax pipeline matches its
    float32 probabilities within 1e-6: with scikit-learn 1.6.1 they differ by
    1.2e-6 (seen with NumPy 1.25 and 2.2), with 1.9.1 they do not; 1.7 and 1.8
    were not tried, so the bound is conservative."""
    if _sklearn_version() < (1, 9):
        return (
            "scikit-learn < 1.9's float32 StandardScaler differs from its ONNX "
            "graph by ~1.2e-6 in the probabilities (seen with 1.6.1)"
        )
    return None


def logistic_regression_elastic_net_params(l1_ratio):
    """LogisticRegression's parameters for an elastic-net penalty: scikit-learn
    < 1.8 needs ``penalty="elasticnet"`` (else ``l1_ratio`` is ignored), 1.8
    deprecates ``penalty`` and reads ``l1_ratio`` alone."""
    if _sklearn_version() < (1, 8):
        return {"penalty": "elasticnet", "l1_ratio": l1_ratio}
    return {"l1_ratio": l1_ratio}
