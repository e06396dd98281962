"""Test configuration.

scikit-learn refuses ``config_context(array_api_dispatch=True)`` unless
SCIPY_ARRAY_API=1 is set before SciPy is first imported, so it is set here,
before anything imports SciPy.
"""

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(0)
