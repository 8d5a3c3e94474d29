"""Arrays as content-addressed safetensors files: the sha256 of the file's bytes is its name and
the hash kept in the row; every read checks it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mfv_desktop.files import atomic_write

from .errors import ArtifactCorrupt


class Artifacts:
    def __init__(self, root: Path, on_new: Callable[[Path], None] | None = None):
        self.root = root
        self._on_new = on_new  # hears each file written (the store removes them if their unit of work fails)

    def path(self, digest: str) -> Path:
        return self.root / digest[:2] / f"{digest}.safetensors"

    def put(self, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> str:
        from safetensors.numpy import save

        data = save(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()},
            metadata={"meta": json.dumps(meta or {}, sort_keys=True, default=str)},
        )
        return self.put_bytes(data)

    def put_file(self, path: str | Path) -> str:
        """Adopt an existing safetensors file (e.g. a function vector) as an artifact."""
        data = Path(path).read_bytes()
        from safetensors.numpy import load

        try:
            load(data)
        except Exception as e:  # noqa: BLE001 - whatever is wrong, it is the file
            raise ArtifactCorrupt(f"{path} is not a safetensors file ({e})") from e
        return self.put_bytes(data)

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        dest = self.path(digest)
        if not dest.is_file():
            atomic_write(dest, data, fsync=True)
            if self._on_new is not None:
                self._on_new(dest)
        return digest

    def read_bytes(self, digest: str) -> bytes:
        p = self.path(digest)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise ArtifactCorrupt(f"artifact {p} is missing ({e}); run the job that made it again") from e
        if hashlib.sha256(data).hexdigest() != digest:
            raise ArtifactCorrupt(
                f"artifact {p} does not match its hash (the file was changed or damaged); "
                "delete it and run the job that made it again"
            )
        return data

    def get(self, digest: str) -> dict[str, np.ndarray]:
        from safetensors.numpy import load

        return load(self.read_bytes(digest))

    def meta(self, digest: str) -> dict[str, Any]:
        """The metadata from the (verified) file's safetensors header: 8 bytes of length, then JSON."""
        data = self.read_bytes(digest)
        m = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")]).get("__metadata__") or {}
        return json.loads(m["meta"]) if "meta" in m else m
