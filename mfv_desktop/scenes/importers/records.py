"""What every importer's records share: numbers, sizes and keys read from hostile data, boxes clipped to the
image, errors that name the record, unique names, inverse triples, the anchor and missing images."""

from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..model import Box, RelationTriple, SceneError, SceneObject, _short
from .images import BadImport

#: one logger for the importers, as before they were split
log = logging.getLogger(__package__)

#: largest coordinate or size, in pixels, taken from a file
MAX_COORD: float = 1e7


# -- validation helpers ---------------------------------------------------------------------------


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not abs(value) <= MAX_COORD:
        raise SceneError(f"{what} must be a finite number of pixels (at most {MAX_COORD:g}), got {_short(value)}")
    return value


def _dim(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_COORD:
        raise SceneError(f"{what} must be a whole number of pixels from 1 to {MAX_COORD:g}, got {_short(value)}")
    return value


def _key(d: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in d:
        raise SceneError(f"{what} has no {key!r}")
    return d[key]


def _dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SceneError(f"{what} must be a JSON object, got {_short(value)}")
    return value


def _clip(x0: float, y0: float, x1: float, y1: float, width: int, height: int) -> Box | None:
    """The part of a box inside the image, None if nothing is left."""
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    return Box(x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


@contextmanager
def _record(where: str, fix: str) -> Iterator[None]:
    """Errors in one record become a BadImport naming the file and the record."""
    try:
        yield
    except BadImport as e:
        raise BadImport(f"{where}: {e}") from e
    except (ValueError, OverflowError, OSError) as e:  # SceneError is a ValueError
        raise BadImport(f"{where}: {e}; {fix}") from e


@contextmanager
def _whole_file(path: Path, fix: str) -> Iterator[None]:
    """Errors reading a file (encoding, nesting, limits) become a BadImport naming it."""
    try:
        yield
    except BadImport:
        raise
    except UnicodeError as e:
        raise BadImport(f"{path} is not UTF-8 text ({e.__class__.__name__}); save it as UTF-8; {fix}") from e
    except (ValueError, OverflowError, RecursionError, MemoryError, OSError, csv.Error) as e:
        raise BadImport(f"{path} cannot be read ({type(e).__name__}: {e}); {fix}") from e


def _unique(names: list[str]) -> list[str]:
    """Repeated names get "_2", "_3", ... (the first keeps its name)."""
    taken, out = set(names), []
    seen: Counter[str] = Counter()
    for n in names:
        seen[n] += 1
        if seen[n] > 1:
            k = seen[n]
            while f"{n}_{k}" in taken:
                k += 1
            n = f"{n}_{k}"
            taken.add(n)
        out.append(n)
    return out


def _with_inverses(triples: list[RelationTriple], inverse: Mapping[str, str]) -> tuple[RelationTriple, ...]:
    both = triples + [
        RelationTriple(t.object, inverse[t.relation], t.subject) for t in triples if t.relation in inverse
    ]
    return tuple(dict.fromkeys(both))


def _best_anchor(objects: tuple[SceneObject, ...], relations: tuple[RelationTriple, ...]) -> str | None:
    """The object with the most relations that have exactly one target (the first on ties)."""
    per = Counter((t.object, t.relation) for t in relations)
    score = Counter(obj for (obj, _), n in per.items() if n == 1)
    best = max((o.name for o in objects), key=lambda n: score[n], default=None)
    return best if best is not None and score[best] else None


def _report_missing(missing: list[str], kept: int, folder: Path, what: str) -> None:
    if not missing:
        return
    if not kept:
        raise BadImport(
            f"none of the {len(missing)} images to import exists in {folder} (e.g. {missing[0]}); "
            f"choose the folder that holds {what}"
        )
    log.warning("skipped %d records whose image is missing in %s (e.g. %s)", len(missing), folder, missing[0])
