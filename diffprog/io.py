"""Saving and loading pytrees (parameters, optimizer states) as ``.npz`` files, without pickle.

Book §16.2 (training runs produce parameters and optimizer states worth keeping).

Format: one ``.npz`` archive holding the leaves as arrays ``leaf_0, leaf_1, ...`` (in flattening
order) plus ``__treedef__``, a JSON description of the pytree structure stored as a NumPy unicode
string (never an object array). The JSON records tuples, lists, dicts (``str``/``int`` keys),
``None``, Python scalar leaves (restored as Python ``float``/``int``/``bool``/``complex``/``str``),
NumPy scalar leaves (restored as NumPy scalars),
namedtuples (class name, module and field names) and classes registered with
:func:`diffprog.register_pytree_node` / :func:`diffprog.register_dataclass` (module, name and
JSON-encodable static data; a module-level function in static data, such as a layer's
activation, is stored by module and name and looked up again on load).

Rebuilding classes (a documented choice): ``load`` never imports code. A namedtuple is rebuilt as
its original class when that class is found in an *already imported* module (``sys.modules``)
with the same field names — so optimizer states such as ``ScaleByAdamState`` come back as
themselves once ``diffprog.optim`` is imported — and otherwise as a generic
``collections.namedtuple`` with the stored name and fields. A registered (non-namedtuple) class
must be importable the same way, else ``load`` raises ``ValueError``.

``save`` is atomic: it writes a temporary file in the target directory and moves it into place
with ``os.replace``, so an interrupted save leaves any previous file intact. The path is used as
given (no ``.npz`` suffix is appended). ``load`` reads with ``allow_pickle=False`` and refuses
files that contain object arrays.

Example::

    >>> import os, tempfile, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "params.npz")
    >>> save(path, {"w": np.arange(3.0), "b": (1.0, None)})
    >>> load(path)
    {'b': (1.0, None), 'w': array([0., 1., 2.])}
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import sys
import tempfile
from typing import Any

import numpy as np

from .core.pytree import _registry, tree_flatten

__all__ = ["load", "save"]

_FORMAT = "diffprog-pytree-v1"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_PY_SCALARS = {bool: "bool", int: "int", float: "float", complex: "complex", str: "str"}
_PY_BUILD = {"bool": bool, "int": int, "float": float, "complex": complex, "str": str}


def _enc_aux(x: Any) -> Any:
    """Encode static data as tagged JSON (None, bool, int, float, str, tuples and lists)."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, (int, float)):
        return x
    if isinstance(x, tuple):
        return {"tuple": [_enc_aux(v) for v in x]}
    if isinstance(x, list):
        return {"list": [_enc_aux(v) for v in x]}
    path = _function_path(x)
    if path is not None:
        return {"function": list(path)}     # a module-level function, by name
    raise TypeError(
        f"save: static data {x!r} of a registered pytree node cannot be stored without pickle "
        "(only None, bool, int, float, str, tuples, lists and module-level functions are "
        "supported; a lambda or a local function has no name to store)"
    )


def _dec_aux(x: Any) -> Any:
    if isinstance(x, dict):
        if "tuple" in x:
            return tuple(_dec_aux(v) for v in x["tuple"])
        if "function" in x:
            module, qualname = x["function"]
            fn = _find_attr(module, qualname)
            if fn is None or not callable(fn):
                raise ValueError(f"load: the file refers to the function {module}.{qualname}; "
                                 "import its module before calling load (load never imports "
                                 "code)")
            return fn
        return [_dec_aux(v) for v in x["list"]]
    return x


def _encode(spec: Any, leaves: list, pos: list) -> Any:
    if spec is None:
        leaf = leaves[pos[0]]
        pos[0] += 1
        py = _PY_SCALARS.get(type(leaf))
        if py:
            return {"t": "leaf", "py": py}
        return {"t": "leaf", "py": "numpy"} if isinstance(leaf, np.generic) else {"t": "leaf"}
    kind, aux, kids = spec
    children = [_encode(c, leaves, pos) for c in kids]
    if kind is tuple:
        return {"t": "tuple", "c": children}
    if kind is list:
        return {"t": "list", "c": children}
    if kind is dict:
        keys = []
        for k in aux:
            if isinstance(k, str):
                keys.append(["s", k])
            elif isinstance(k, int) and not isinstance(k, bool):
                keys.append(["i", k])
            else:
                raise TypeError(f"save: dict key {k!r} is not a str or int")
        return {"t": "dict", "k": keys, "c": children}
    if kind is type(None):
        return {"t": "none"}
    if kind == "namedtuple":
        cls = aux
        return {"t": "namedtuple", "module": cls.__module__, "name": cls.__qualname__,
                "fields": list(cls._fields), "c": children}
    cls = kind
    return {"t": "node", "module": cls.__module__, "name": cls.__qualname__,
            "aux": _enc_aux(aux), "c": children}


def _find_attr(module: str, qualname: str) -> Any:
    """``module.qualname`` looked up in an already imported module (never imports code)."""
    obj = sys.modules.get(module)
    for part in qualname.split("."):
        if obj is None or part == "<locals>":
            return None
        obj = getattr(obj, part, None)
    return obj


def _function_path(fn: Any) -> tuple[str, str] | None:
    """``(module, qualname)`` under which the function ``fn`` can be found again: its own module,
    or else (for functions made by a factory, such as ``diffprog.numpy.tanh``) the first imported
    module of the same top-level package that exports it under its name."""
    qualname = getattr(fn, "__qualname__", "")
    module = getattr(fn, "__module__", None)
    if not callable(fn) or isinstance(fn, type) or not module or not qualname \
            or "<" in qualname:
        return None
    if _find_attr(module, qualname) is fn:
        return module, qualname
    top = module.split(".")[0]
    for name in sorted(n for n in list(sys.modules) if n == top or n.startswith(top + ".")):
        if _find_attr(name, qualname) is fn:
            return name, qualname
    return None


def _find_class(module: str, qualname: str) -> Any:
    obj = _find_attr(module, qualname)
    return obj if isinstance(obj, type) else None


def _decode(d: Any, leaves: list, pos: list) -> Any:
    if not isinstance(d, dict) or "t" not in d:
        raise ValueError("load: malformed pytree structure in the file")
    t = d["t"]
    if t == "leaf":
        leaf = leaves[pos[0]]
        pos[0] += 1
        py = d.get("py")
        if py == "numpy":
            return leaf[()]
        return _PY_BUILD[py](leaf.item()) if py in _PY_BUILD else leaf
    if t == "none":
        return None
    children = [_decode(c, leaves, pos) for c in d["c"]]
    if t == "tuple":
        return tuple(children)
    if t == "list":
        return children
    if t == "dict":
        return {(k if tag == "s" else int(k)): c for (tag, k), c in zip(d["k"], children,
                                                                       strict=True)}
    if t == "namedtuple":
        cls = _find_class(d["module"], d["name"])
        fields = tuple(d["fields"])
        if cls is None or not issubclass(cls, tuple) or tuple(getattr(cls, "_fields", ())) \
                != fields:
            cls = collections.namedtuple(d["name"].rsplit(".", 1)[-1], fields)
        return cls(*children)
    if t == "node":
        cls = _find_class(d["module"], d["name"])
        if cls is None or cls not in _registry:
            raise ValueError(
                f"load: the file holds a {d['module']}.{d['name']} node; import the module that "
                "defines and registers it before calling load (load never imports code)"
            )
        return _registry[cls][1](_dec_aux(d["aux"]), children)
    raise ValueError(f"load: unknown node type {t!r} in the file's pytree structure")


def save(path: str | os.PathLike, tree: Any) -> None:
    """Write the pytree ``tree`` to ``path`` as an ``.npz`` file, atomically and without pickle.
    Book §16.2.

    Leaves are converted with ``np.asarray``; object-dtype leaves are refused (``TypeError``).

    Example::

        >>> import os, tempfile, numpy as np
        >>> from diffprog.optim.transforms import adam
        >>> path = os.path.join(tempfile.mkdtemp(), "state.npz")
        >>> save(path, adam(0.1).init([np.zeros(2)]))
        >>> type(load(path)).__name__
        'ScaleByAdamState'
    """
    path = os.fspath(path)
    leaves, treedef = tree_flatten(tree)
    arrays: dict[str, np.ndarray] = {}
    for i, leaf in enumerate(leaves):
        arr = np.asarray(leaf)
        if arr.dtype.kind == "O":
            raise TypeError(
                f"save: leaf {i} ({type(leaf).__name__}) is not a numeric array; object arrays "
                "would need pickle and are not supported"
            )
        arrays[f"leaf_{i}"] = arr
    structure = json.dumps({"format": _FORMAT,
                            "tree": _encode(treedef.spec, leaves, [0])})
    arrays["__treedef__"] = np.array(structure)

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # the temporary file may already be gone
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike) -> Any:
    """Read a pytree written by :func:`save`. Book §16.2.

    Uses ``np.load(..., allow_pickle=False)``: a file holding pickled (object) arrays raises
    ``ValueError``, as does a file without a diffprog structure record.

    Example::

        >>> import os, tempfile, numpy as np
        >>> path = os.path.join(tempfile.mkdtemp(), "p.npz")
        >>> save(path, [np.ones(2), 3])
        >>> load(path)
        [array([1., 1.]), 3]
    """
    path = os.fspath(path)
    with np.load(path, allow_pickle=False) as z:
        try:
            contents = {k: z[k] for k in z.files}  # raises on pickled (object) members
        except ValueError as e:
            if "pickle" in str(e).lower() or "object arrays" in str(e).lower():
                raise ValueError(
                    f"load: {path!r} contains pickled object arrays; refusing to load them "
                    "(allow_pickle=False)"
                ) from e
            raise
    if "__treedef__" not in contents:
        raise ValueError(
            f"load: {path!r} has no '__treedef__' record; it was not written by "
            "diffprog.io.save"
        )
    try:
        record = json.loads(str(contents["__treedef__"][()]))
        n = sum(1 for k in contents if k.startswith("leaf_"))
        leaves = [contents[f"leaf_{i}"] for i in range(n)]
    except (KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"load: {path!r} is malformed ({e})") from e
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        raise ValueError(f"load: {path!r} has an unknown format record")
    pos = [0]
    tree = _decode(record["tree"], leaves, pos)
    if pos[0] != len(leaves):
        raise ValueError(f"load: {path!r} holds {len(leaves)} leaves but its structure uses "
                         f"{pos[0]}")
    return tree
