"""The one typed codec (cattrs) for the app's plain dataclasses: to JSON-ready dicts (tuples as lists)
and back. Torch-free and Qt-free, below every package that records a dataclass (specs, tasks, scenes)."""

from __future__ import annotations

from typing import Any

import cattrs

converter = cattrs.Converter()


def _lists(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_lists(v) for v in x]
    return x


def to_plain(obj: Any) -> Any:
    """A dataclass as plain JSON data: fields in declaration order, nested dataclasses as dicts,
    tuples as lists (what json.dumps writes for them anyway)."""
    return _lists(converter.unstructure(obj))


def to_dict(obj: Any) -> dict[str, Any]:
    """`to_plain` of a dataclass: its fields as a dict."""
    d = to_plain(obj)
    assert isinstance(d, dict), type(obj)
    return d
