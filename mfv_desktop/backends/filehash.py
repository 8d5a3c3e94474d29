"""The sha256 of a model's files for provenance, streamed and cached (no torch).

Every weight file is hashed, however large: two runs on different checkpoints of one model must never
be mistaken for one. A file is read in chunks (never whole in memory), once: the digest is kept in a small
JSON cache in the user's cache folder (locations.cache_dir(), platformdirs), keyed by the file's absolute
path, size and modification time in nanoseconds, so a later run reads no byte of an unchanged file and a
file replaced or touched since is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path

from mfv_desktop.files import atomic_write
from mfv_desktop.locations import cache_dir

CHUNK = 8 << 20
CACHE_FILE = "file_hashes.json"
#: entries kept in the cache (the oldest go first); a model has a few dozen files at most
MAX_ENTRIES = 2000
_lock = threading.Lock()


def _cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def _load() -> dict[str, dict]:
    try:
        data = json.loads(_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no cache yet, or a damaged one: hash again
    return data if isinstance(data, dict) else {}


def _store(cache: dict[str, dict]) -> None:
    if len(cache) > MAX_ENTRIES:
        cache = dict(list(cache.items())[-MAX_ENTRIES:])
    try:
        atomic_write(_cache_path(), json.dumps(cache, indent=0, sort_keys=False))
    except OSError:
        pass  # a read-only cache folder costs time on the next run, nothing else


def stream_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read CHUNK bytes at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_files(paths: Iterable[Path]) -> dict[Path, str]:
    """{path: sha256} for existing files, from the cache where path, size and mtime match."""
    with _lock:
        cache = _load()
        out: dict[Path, str] = {}
        changed = False
        for p in paths:
            p = Path(p)
            st = p.stat()
            key = str(p.resolve())
            hit = cache.get(key)
            if isinstance(hit, dict) and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
                out[p] = str(hit["sha256"])
                continue
            digest = stream_sha256(p)
            cache.pop(key, None)  # re-inserted last: the newest entries survive trimming
            cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
            out[p] = digest
            changed = True
        if changed:
            _store(cache)
        return out


def fingerprint(folder: Path, paths: Iterable[Path]) -> dict[str, str]:
    """{name: sha256} of a model's files: a name is the path relative to `folder` (POSIX), or the absolute
    path for a file outside it. Each file once, sorted by name."""
    folder = Path(folder)
    unique = list(dict.fromkeys(Path(p) for p in paths))
    digests = sha256_files(unique)

    def name(p: Path) -> str:
        try:
            return p.relative_to(folder).as_posix()
        except ValueError:
            return str(p)

    return dict(sorted((name(p), d) for p, d in digests.items()))
