"""The README's code runs as written."""

from __future__ import annotations

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks
    ns: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), ns)
    # the quickstart's gradient has the structure of the parameters
    assert len(ns["grads"]) == 2 and ns["grads"][0][0].shape == (4, 8)
    assert abs(ns["diffprog"].grad(ns["diffprog"].grad(ns["diffprog"].grad(
        ns["dnp"].sin)))(0.3) + np.cos(0.3)) < 1e-12


def test_readme_names_the_three_commands():
    text = README.read_text()
    assert 'pip install -e ".[dev,gallery]"' in text
    assert "python -m diffprog.gallery" in text
    assert "python -m pytest -q tests" in text
