"""Gallery: runnable reproductions of the book's figures.

Run every example and write the figures plus an ``index.html`` that lists them::

    python -m diffprog.gallery [--out DIR] [--only NAME ...]

The default output directory is ``./gallery_out``. Each example is a function registered with
:func:`diffprog.gallery.registry.example` in a module of this package; it receives the output
directory and returns the PNG files it wrote. Figures are drawn with matplotlib's Agg backend
(``pip install -e ".[gallery]"``); a tqdm progress bar is shown when tqdm is installed. The command
exits with status 1 if any example raised, naming each one, and 2 on a usage error.

To add a figure, create ``diffprog/gallery/fig_<chapter>_<k>_<topic>.py`` with a function decorated
by ``@example(name, title, section, caption)``; it is discovered automatically.
"""

from __future__ import annotations

import argparse
import html
import importlib
import os
import pkgutil
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from diffprog.gallery.registry import (
    Example,
    example,
    get_example,
    list_examples,
    pyplot,
    register,
    unregister,
)

__all__ = [
    "Example",
    "ExampleResult",
    "GalleryReport",
    "example",
    "get_example",
    "list_examples",
    "load_examples",
    "main",
    "pyplot",
    "register",
    "run_gallery",
    "unregister",
    "write_index",
]

DEFAULT_OUT = Path("gallery_out")
_NOT_EXAMPLES = frozenset({"registry"})


@dataclass
class ExampleResult:
    """Outcome of running one example: the files it wrote, or the error it raised."""

    example: Example
    paths: list[Path] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True if the example ran without raising and wrote the files it returned."""
        return self.error is None


@dataclass
class GalleryReport:
    """Results of a gallery run, plus the gallery modules that failed to import."""

    results: list[ExampleResult]
    load_errors: dict[str, str]
    index: Path | None = None

    @property
    def failures(self) -> list[str]:
        """Names of the failed examples (and of modules that failed to import)."""
        failed = [r.example.name for r in self.results if not r.ok]
        return failed + [f"module {m}" for m in self.load_errors]


def load_examples() -> dict[str, str]:
    """Import every example module of this package, so that their examples get registered.

    Modules whose name starts with an underscore, and ``registry``, are skipped. Returns a dict
    mapping the name of each module that failed to import to its traceback.
    """
    errors: dict[str, str] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _NOT_EXAMPLES:
            continue
        module = f"{__name__}.{info.name}"
        try:
            importlib.import_module(module)
        except Exception:  # noqa: BLE001 - reported as a gallery failure
            errors[module] = traceback.format_exc()
    return errors


def _progress(items: Sequence[Example]) -> Iterable[Example]:
    try:
        from tqdm import tqdm
    except ImportError:
        return items
    return tqdm(items, desc="gallery", unit="figure", file=sys.stderr, leave=False)


def _run_one(ex: Example, out_dir: Path) -> ExampleResult:
    result = ExampleResult(ex)
    start = time.perf_counter()
    try:
        paths = ex.fn(out_dir)
        if paths is None or isinstance(paths, (str, os.PathLike)):
            raise TypeError(
                f"example {ex.name!r} must return a list of PNG paths, got {type(paths).__name__}"
            )
        result.paths = [Path(p) for p in paths]
        missing = [str(p) for p in result.paths if not Path(p).is_file()]
        if missing:
            raise FileNotFoundError(f"example {ex.name!r} returned missing files: {missing}")
    except Exception:  # noqa: BLE001 - a failing example is reported, not fatal to the others
        result.error = traceback.format_exc()
    finally:
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")
    result.seconds = time.perf_counter() - start
    return result


def run_gallery(
    out_dir: str | os.PathLike[str] = DEFAULT_OUT,
    only: Sequence[str] | None = None,
    progress: bool = True,
) -> GalleryReport:
    """Run the registered examples into ``out_dir`` and write ``out_dir/index.html``.

    Args:
        out_dir: output directory (created if needed).
        only: names of the examples to run; all of them if ``None``. Unknown names raise
            ``KeyError`` before anything runs.
        progress: show a tqdm progress bar if tqdm is installed.

    Returns:
        A :class:`GalleryReport`. Import errors of gallery modules are counted as failures only
        when every example is run (with ``only``, they are kept in ``load_errors`` but do not
        make the run fail unless the requested example is missing).
    """
    os.environ.setdefault("MPLBACKEND", "Agg")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    load_errors = load_examples()
    if only:
        try:
            selected = [get_example(name) for name in only]
        except KeyError as exc:
            if load_errors:
                broken = ", ".join(load_errors)
                raise KeyError(f"{exc.args[0]} (modules that failed to import: {broken})") from None
            raise
    else:
        selected = list_examples()
    items = _progress(selected) if progress else selected
    results = [_run_one(ex, out) for ex in items]
    report = GalleryReport(results, load_errors if not only else {})
    report.index = write_index(out, results, load_errors)
    return report


def write_index(
    out_dir: Path, results: Sequence[ExampleResult], load_errors: dict[str, str] | None = None
) -> Path:
    """Write ``out_dir/index.html``: every figure with its title, caption and book section."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>diffprog gallery</title>",
        "<style>body{font-family:sans-serif;max-width:960px;margin:auto;padding:1em}"
        "figure{margin:2em 0}img{max-width:100%;border:1px solid #ddd}"
        "figcaption{color:#333}.error{color:#a00}pre{overflow-x:auto;background:#f6f6f6}</style>",
        "</head><body>",
        "<h1>diffprog gallery</h1>",
        "<p>Reproductions of figures from <em>The Elements of Differentiable Programming</em>, "
        "computed with diffprog. Regenerate with <code>python -m diffprog.gallery</code>.</p>",
    ]
    for r in results:
        ex = r.example
        parts.append(f'<section id="{esc(ex.name)}"><h2>{esc(ex.title)}</h2>')
        if r.ok:
            for p in r.paths:
                try:
                    src = p.resolve().relative_to(out_dir.resolve()).as_posix()
                except ValueError:
                    src = p.resolve().as_uri()
                parts.append(
                    f'<figure><img src="{esc(src)}" alt="{esc(ex.title)}">'
                    f"<figcaption>{esc(ex.caption)} (Book {esc(ex.section)}.)</figcaption>"
                    "</figure>"
                )
        else:
            parts.append(
                f'<p class="error">This example failed (Book {esc(ex.section)}): '
                f"{esc(ex.caption)}</p><pre>{esc(r.error or '')}</pre>"
            )
        parts.append("</section>")
    for module, err in (load_errors or {}).items():
        parts.append(
            f'<section><h2 class="error">Module {esc(module)} failed to import</h2>'
            f"<pre>{esc(err)}</pre></section>"
        )
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point of ``python -m diffprog.gallery``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m diffprog.gallery",
        description="Reproduce the book's figures as PNG files plus an index.html.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only this example (repeatable)"
    )
    parser.add_argument("--list", action="store_true", help="list the examples and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if args.list:
        errors = load_examples()
        for ex in list_examples():
            print(f"{ex.name:40s} {ex.section:8s} {ex.title}")
        for module in errors:
            print(f"(module {module} failed to import)", file=sys.stderr)
        return 1 if errors else 0
    try:
        report = run_gallery(args.out, only=args.only, progress=not args.no_progress)
    except KeyError as exc:
        print(f"python -m diffprog.gallery: {exc.args[0]}", file=sys.stderr)
        return 2
    for r in report.results:
        status = "ok    " if r.ok else "FAILED"
        print(f"{status} {r.example.name} ({r.seconds:.1f} s)")
        if not r.ok:
            print(r.error, file=sys.stderr)
    for module, err in report.load_errors.items():
        print(f"FAILED import of {module}", file=sys.stderr)
        print(err, file=sys.stderr)
    print(f"index: {report.index}")
    if report.failures:
        print(
            f"{len(report.failures)} gallery example(s) failed: {', '.join(report.failures)}",
            file=sys.stderr,
        )
        return 1
    return 0
