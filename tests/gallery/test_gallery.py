"""Tests of the gallery runner (``python -m diffprog.gallery``) and its registry."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from diffprog.gallery import list_examples, load_examples, main, registry  # noqa: E402
from diffprog.gallery.example_8_2_graph import layered_layout  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == PNG_MAGIC


@pytest.fixture(scope="module")
def gallery_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run the whole gallery once through the CLI, as a user would."""
    out = tmp_path_factory.mktemp("gallery") / "out"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env["MPLBACKEND"] = "Agg"
    proc = subprocess.run(
        [sys.executable, "-m", "diffprog.gallery", "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(REPO_ROOT),
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"gallery failed:\n{proc.stdout}\n{proc.stderr}"
    return out, (out / "index.html").read_text(encoding="utf-8")


def test_cli_writes_valid_pngs_and_index(gallery_run: tuple[Path, str]) -> None:
    out, index = gallery_run
    sources = re.findall(r'<img src="([^"]+)"', index)
    assert sources, "index.html lists no figure"
    for src in sources:
        path = out / html.unescape(src)
        assert path.is_file(), f"missing figure {path}"
        assert _is_png(path), f"{path} is not a PNG file"
    for png in out.glob("*.png"):
        assert _is_png(png)


def test_index_mentions_every_example(gallery_run: tuple[Path, str]) -> None:
    _, index = gallery_run
    assert load_examples() == {}
    examples = list_examples()
    assert {"fig_7_1_finite_differences", "example_8_2_graph"} <= {ex.name for ex in examples}
    for ex in examples:
        assert html.escape(ex.title) in index, ex.name
        assert f'id="{ex.name}"' in index
        assert ex.section in index
    assert "§7.2" in index
    assert "§8.3" in index
    assert 'class="error"' not in index


def test_fig_7_1_and_example_8_2_outputs(gallery_run: tuple[Path, str]) -> None:
    out, _ = gallery_run
    assert _is_png(out / "fig_7_1_finite_differences.png")
    assert _is_png(out / "example_8_2_graph.png")
    dot = (out / "example_8_2_graph.dot").read_text(encoding="utf-8")
    assert "digraph" in dot
    assert "->" in dot


def test_failing_example_makes_runner_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "_test_failing_example"

    @registry.example(name, title="A failing example", section="0.0", caption="Always raises.")
    def failing(out_dir: Path) -> list[Path]:
        raise RuntimeError("deliberate failure")

    try:
        code = main(["--out", str(tmp_path), "--only", name, "--no-progress"])
    finally:
        registry.unregister(name)
    assert code != 0
    err = capsys.readouterr().err
    assert name in err
    assert "deliberate failure" in err
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert 'class="error"' in index
    assert name not in {ex.name for ex in registry.list_examples()}


def test_example_returning_missing_file_fails(tmp_path: Path) -> None:
    name = "_test_missing_file_example"

    @registry.example(name, title="Missing file", section="§0.0", caption="Returns a bad path.")
    def missing(out_dir: Path) -> list[Path]:
        return [out_dir / "never_written.png"]

    try:
        code = main(["--out", str(tmp_path), "--only", name, "--no-progress"])
    finally:
        registry.unregister(name)
    assert code == 1


def test_unknown_example_is_a_usage_error(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path), "--only", "no_such_example", "--no-progress"]) == 2


def test_registry_rejects_duplicates_and_normalizes_section() -> None:
    name = "_test_duplicate"

    def first(out_dir: Path) -> list[Path]:
        return []

    def second(out_dir: Path) -> list[Path]:
        return []

    entry = registry.register(name, "t", "1.2", "c", first)
    try:
        assert entry.section == "§1.2"
        with pytest.raises(ValueError, match=name):
            registry.register(name, "t", "1.2", "c", second)
    finally:
        registry.unregister(name)
    with pytest.raises(KeyError):
        registry.unregister(name)


def test_layered_layout_of_fig_8_9() -> None:
    parents = [[], [0], [0], [1], [2, 3], [1, 4], [5], [4, 6]]
    depth, pos = layered_layout(parents)
    assert depth == [0, 1, 1, 2, 3, 4, 5, 6]
    assert pos[1][0] == pos[2][0] == 1.0
    assert pos[1][1] > pos[2][1]
    with pytest.raises(ValueError, match="topological"):
        layered_layout([[1], []])
