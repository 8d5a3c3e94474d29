"""Files written whole or not at all (no torch, no Qt): a crash never leaves half a file under the final name.

`atomic_write(path, data)` for bytes or text in memory; `atomic_path(path)` for writers that need a file
name (safetensors, SQLite's backup, Qt's image writer, a copy). Both write a temporary file beside `path`
(same folder, so the rename is atomic; its name starts with a dot and keeps `path`'s suffix, so a writer
that goes by the suffix still works), then rename it onto `path`; on any failure the temporary file is
removed and `path` is untouched. `fsync=True` syncs the file's bytes before the rename (the store's
artifacts and database copies, which must survive a power cut).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """A temporary path beside `path` to write; renamed onto `path` when the block ends without error."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}-{threading.get_ident()}.tmp{path.suffix}")
    try:
        yield tmp
        if fsync:
            _sync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | Path, data: bytes | str, *, fsync: bool = False) -> Path:
    """Write `data` (text as UTF-8) to `path` whole or not at all; returns `path`."""
    path = Path(path)
    with atomic_path(path, fsync=fsync) as tmp:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return path
