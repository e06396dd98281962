"""Run every docstring example of the package, so ``python -m pytest`` keeps
them honest."""

import doctest
import importlib
import pkgutil

import pytest

import sksoftmax

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(sksoftmax.__path__, "sksoftmax.")
)


@pytest.mark.parametrize("name", ["sksoftmax", *MODULES])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        report=False,
    )
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
