"""Turn a model reference into a loaded backend, once per (model, device, dtype).

A model reference is one of:
- ``bundled``: the small OpenFlamingo trained by this project (resources/bundled, or $MFV_BUNDLED_MODEL);
- ``tiny`` or ``tiny:SEED``: the tiny random OpenFlamingo, built on first use into the cache folder;
- a path to a model folder (OpenFlamingo-4B files, or a folder with mfv_model.json).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from mfv_desktop.locations import bundled_folder, cache_dir

from .base import Backend, BackendError

_LOADED: dict[tuple[str, str, str], Backend] = {}
_LOCK = threading.Lock()


def model_folder(ref: str) -> Path:
    """The folder a reference points to, building the tiny model there if needed."""
    if ref == "bundled":
        folder = bundled_folder()
        if not (folder / "mfv_model.json").is_file():
            raise BackendError(f"the bundled model is not at {folder}: train it with "
                               "`mfv train-bundled --export resources/bundled`, or use --model tiny")
        return folder
    if ref == "tiny" or ref.startswith("tiny:"):
        from .small import SmallConfig, build_small_model

        try:
            seed = int(ref.partition(":")[2] or 0)
        except ValueError as e:
            raise BackendError(f"model {ref!r}: the tiny model's seed must be an integer, e.g. tiny:0") from e
        folder = cache_dir() / "models" / f"tiny-s{seed}"
        if not (folder / "checkpoint.safetensors").is_file():
            tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            build_small_model(tmp, SmallConfig(seed=seed))
            shutil.rmtree(folder, ignore_errors=True)
            tmp.replace(folder)
        return folder
    folder = Path(ref).expanduser()
    if not folder.exists():
        raise BackendError(f"model {ref!r} is neither 'bundled', 'tiny' nor an existing model folder")
    return folder


def load_backend(ref: str, device: str | None = "cpu", dtype: str = "fp32") -> Backend:
    from .openflamingo import OpenFlamingoBackend

    key = (ref, str(device), dtype)
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = OpenFlamingoBackend.from_folder(model_folder(ref), device=device, dtype=dtype)
        return _LOADED[key]
