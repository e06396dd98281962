"""The supported versions: declared, pinned in CI's minimum job, and checked at
import (sksoftmax/_compat.py)."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sksoftmax import SoftmaxRegressionClassifier, _compat

ROOT = Path(__file__).resolve().parents[1]


def _pretend(monkeypatch, **versions):
    """Make ``installed_version`` report ``versions`` (PyPI names with ``_``
    for ``-``; None: not installed) and the real version for the rest."""
    real = _compat.installed_version
    fake = {name.replace("_", "-"): v for name, v in versions.items()}
    monkeypatch.setattr(
        _compat,
        "installed_version",
        lambda name: fake[name] if name in fake else real(name),
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1.6.1", (1, 6, 1)),
        ("1.11", (1, 11)),
        ("2.0.0rc1", (2, 0, 0)),
        ("2025.4.0", (2025, 4, 0)),
    ],
)
def test_parse_version(text, expected):
    assert _compat.parse_version(text) == expected


def test_parse_version_rejects_what_is_not_a_version():
    with pytest.raises(ValueError, match="Cannot read a version"):
        _compat.parse_version("dev")


def test_the_installed_versions_pass():
    _compat.check_dependency_versions()  # raises if this environment is unsupported


def test_an_old_scikit_learn_is_refused_with_the_versions(monkeypatch):
    _pretend(monkeypatch, scikit_learn="1.5.2")
    with pytest.raises(ImportError) as info:
        _compat.check_dependency_versions()
    message = str(info.value)
    assert "scikit-learn>=1.6.1 (found 1.5.2)" in message
    assert "pip install --upgrade 'scikit-learn>=1.6.1'" in message
    assert "numpy" not in message  # only what is wrong is named


def test_every_problem_is_named_at_once(monkeypatch):
    _pretend(monkeypatch, numpy="1.24.4", scipy="1.10.1", array_api_compat=None)
    with pytest.raises(ImportError) as info:
        _compat.check_dependency_versions()
    message = str(info.value)
    assert "numpy>=1.25.0 (found 1.24.4)" in message
    assert "scipy>=1.11.1 (found 1.10.1)" in message
    assert "array-api-compat>=1.11 (not installed)" in message
    assert "scikit-learn" not in message


def test_the_minimum_itself_is_accepted(monkeypatch):
    _pretend(
        monkeypatch,
        **{k.replace("-", "_"): v for k, v in _compat.MINIMUM_VERSIONS.items()},
    )
    _compat.check_dependency_versions()


def test_import_fails_before_the_estimator_is_loaded():
    """``import sksoftmax`` under a too-old scikit-learn fails at once with the
    versions, before any module that needs the newer scikit-learn is imported."""
    code = (
        "import importlib.metadata as md, sys\n"
        "real = md.version\n"
        "md.version = lambda n: '1.5.2' if n == 'scikit-learn' else real(n)\n"
        "try:\n"
        "    import sksoftmax\n"
        "except ImportError as exc:\n"
        "    print('ImportError:', exc)\n"
        "print('classifier loaded:', 'sksoftmax._classifier' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "ImportError: sksoftmax needs scikit-learn>=1.6.1 (found 1.5.2)" in out
    assert "classifier loaded: False" in out


def test_an_old_dask_is_refused_before_any_work(monkeypatch):
    da = pytest.importorskip("dask.array")
    _pretend(monkeypatch, dask="2025.3.0")
    X = da.from_array(np.ones((20, 3)), chunks=(10, 3))
    y = da.from_array(np.arange(20) % 2, chunks=10)
    with pytest.raises(ImportError, match=r"dask>=2025\.4\.0 \(found 2025\.3\.0\)"):
        SoftmaxRegressionClassifier().fit(X, y)


def test_dask_not_installed_is_not_checked(monkeypatch):
    _pretend(monkeypatch, dask=None, distributed=None)
    _compat.check_dask_version()


# -- declared == tested -----------------------------------------------------------


def _lower_bounds():
    """{name: version} for every ``name>=version`` in pyproject.toml's
    dependencies and optional dependencies."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    bounds = {}
    for spec in specs:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?>=([0-9.]+)", spec)
        if match:
            name, version = match.group(1).lower(), match.group(3)
            assert bounds.setdefault(name, version) == version, name
    return bounds


def _pins():
    pins = {}
    for line in (ROOT / "requirements-min.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_the_ci_pins_are_the_declared_minimums():
    bounds, pins = _lower_bounds(), _pins()
    for name, version in bounds.items():
        if name in pins:
            assert pins[name] == version, (name, pins[name], version)
    for name in [*_compat.MINIMUM_VERSIONS, "dask", "distributed", "dask-ml"]:
        assert name in pins, name
    runtime = {name: bounds[name] for name in _compat.MINIMUM_VERSIONS}
    assert runtime == _compat.MINIMUM_VERSIONS
    assert bounds["dask"] == bounds["distributed"] == _compat.MINIMUM_DASK_VERSION


def test_the_readme_states_the_declared_minimums():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Supported versions", 1)[1].split("\n## ", 1)[0]
    for name, version in _compat.MINIMUM_VERSIONS.items():
        assert f"{name} >= {version}" in section, name
