"""Test configuration.

scikit-learn refuses ``config_context(array_api_dispatch=True)`` unless
SCIPY_ARRAY_API=1 is set before SciPy is first imported, so it is set here,
before anything imports SciPy.
"""

import functools
import importlib.util
import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@functools.cache
def has_gpu():
    """True when CuPy imports and sees at least one GPU."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` are skipped, with the reason, where no GPU is found."""
    if has_gpu():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a visible GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def gpu_available():
    return has_gpu()
