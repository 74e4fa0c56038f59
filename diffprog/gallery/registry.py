"""Registry of gallery examples: runnable reproductions of the book's figures.

An example is a function that takes an output directory and returns the list of PNG files it
wrote there. It joins the gallery through the :func:`example` decorator::

    from diffprog.gallery.registry import example, pyplot

    @example("fig_7_1", title="Fig. 7.1: ...", section="7.2", caption="...")
    def fig_7_1(out_dir: Path) -> list[Path]:
        plt = pyplot()
        ...
        return [png_path]

Examples live in modules of the ``diffprog.gallery`` package; :func:`load_examples` imports all of
them, so a new module is picked up without any other change. Names are unique: registering a name
twice is an error (unless the same function is registered again, as happens when a module is
re-imported).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ExampleFn = Callable[[Path], list[Path]]

__all__ = [
    "Example",
    "ExampleFn",
    "example",
    "get_example",
    "list_examples",
    "pyplot",
    "register",
    "unregister",
]


@dataclass(frozen=True)
class Example:
    """A registered gallery entry.

    Attributes:
        name: unique identifier, also the stem of the files it writes (``fig_7_1``).
        title: heading shown in ``index.html`` (``"Fig. 7.1: finite differences"``).
        section: the book section it reproduces, e.g. ``"§7.2"``.
        caption: a sentence or two describing the figure.
        fn: the function drawing it: ``fn(out_dir) -> list of PNG paths``.
    """

    name: str
    title: str
    section: str
    caption: str
    fn: ExampleFn


_REGISTRY: dict[str, Example] = {}


def _normalize_section(section: str) -> str:
    section = str(section).strip()
    return section if section.startswith("§") else f"§{section}"


def register(name: str, title: str, section: str, caption: str, fn: ExampleFn) -> Example:
    """Add ``fn`` to the gallery under ``name`` and return its :class:`Example` record.

    ``section`` is the book section ("7.2" or "§7.2"; the "§" is added if missing).
    Raises ``ValueError`` if ``name`` is empty or already taken by another function.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"register: name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise TypeError(f"register: fn for {name!r} must be callable, got {type(fn).__name__}")
    entry = Example(name, title, _normalize_section(section), caption, fn)
    old = _REGISTRY.get(name)
    if old is not None and _qualname(old.fn) != _qualname(fn):
        raise ValueError(f"register: an example named {name!r} is already registered")
    _REGISTRY[name] = entry
    return entry


def _qualname(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"


def example(name: str, title: str, section: str, caption: str) -> Callable[[ExampleFn], ExampleFn]:
    """Decorator registering a gallery example; the decorated function is returned unchanged.

    Args:
        name: unique identifier (used for ``--only`` and as the stem of output files).
        title: heading in ``index.html``.
        section: the book section the figure comes from, e.g. ``"7.2"`` (shown as "§7.2").
        caption: text shown under the figure; ``index.html`` adds "Book §<section>".
    """

    def decorate(fn: ExampleFn) -> ExampleFn:
        register(name, title, section, caption, fn)
        return fn

    return decorate


def unregister(name: str) -> None:
    """Remove the example ``name`` from the gallery (``KeyError`` if it is not registered)."""
    try:
        del _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unregister: no example named {name!r}") from None


def get_example(name: str) -> Example:
    """The registered example called ``name`` (``KeyError`` listing the known names otherwise)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise KeyError(f"get_example: no example named {name!r}; registered: {known}") from None


def list_examples() -> list[Example]:
    """Every registered example, in registration order."""
    return list(_REGISTRY.values())


def pyplot() -> Any:
    """``matplotlib.pyplot`` with the non-interactive Agg backend selected.

    Examples call this instead of importing pyplot themselves, so that the gallery never opens a
    window and works without a display.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
