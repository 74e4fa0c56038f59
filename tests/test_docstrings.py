"""Every public function documents itself: a docstring citing the book, with a runnable example."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil

import pytest

import diffprog

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(diffprog.__path__, "diffprog.")
    if ".gallery." not in m.name and not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def _public_functions():
    namespaces = [diffprog, importlib.import_module("diffprog.numpy"),
                  importlib.import_module("diffprog.numpy.linalg"),
                  importlib.import_module("diffprog.numpy.fft"),
                  importlib.import_module("diffprog.scipy.special"),
                  importlib.import_module("diffprog.derivatives"),
                  importlib.import_module("diffprog.nn"),
                  importlib.import_module("diffprog.optim"),
                  importlib.import_module("diffprog.proba"),
                  importlib.import_module("diffprog.io")]
    for ns in namespaces:
        names = getattr(ns, "__all__", None) or [n for n in dir(ns) if not n.startswith("_")]
        for n in names:
            obj = getattr(ns, n)
            if isinstance(obj, type) and issubclass(obj, tuple):
                continue  # result records (named tuples) are documented by their functions
            if callable(obj) and getattr(obj, "__module__", "").startswith("diffprog"):
                yield f"{ns.__name__}.{n}", obj


@pytest.mark.parametrize("qualname, obj", list(_public_functions()), ids=lambda x: str(x)[:60])
def test_public_functions_cite_the_book_and_show_an_example(qualname, obj):
    doc = inspect.getdoc(obj) or ""
    assert "§" in doc, f"{qualname}: no book section in its docstring"
    assert "xample" in doc or ">>>" in doc, f"{qualname}: no example in its docstring"
