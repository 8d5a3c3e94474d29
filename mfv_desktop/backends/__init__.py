"""Vision-language models behind one small protocol (torch lives here and below fv/). The names
below load on first use, so that `backends.registry` (which families exist, which one a folder
is) can be asked without importing torch."""

from importlib import import_module
from typing import Any

_NAMES = {
    "DTYPES": "base",
    "Backend": "base",
    "BackendError": "base",
    "Batch": "base",
    "Geometry": "base",
    "batches": "base",
    "resolve_device": "base",
    "resolve_dtype": "base",
    "load_backend": "loading",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        return getattr(import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
