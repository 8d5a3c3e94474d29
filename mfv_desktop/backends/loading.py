"""Turn a model reference into a loaded backend through the family registry (registry.py).

A model reference is one of:
- ``bundled``: the small OpenFlamingo trained by this project (resources/bundled, or $MFV_BUNDLED_MODEL);
- a tiny random model of a family (``tiny`` or ``tiny:SEED`` for OpenFlamingo), built on first use
  into the cache folder;
- a path to a model folder of any family.

One model is resident at a time: loading another (a switch in the model manager) lets the previous
one go, so two models never share a GPU; asking again for the resident one returns it.
"""

from __future__ import annotations

import gc
import os
import shutil
import threading
from pathlib import Path

from mfv_desktop.locations import bundled_folder, cache_dir

from .base import Backend, BackendError
from .registry import FAMILIES, family_of, parse_ref

#: the resident model: (reference, device, dtype) -> backend (one entry at most)
_LOADED: dict[tuple[str, str, str], Backend] = {}
_LOCK = threading.Lock()


def model_folder(ref: str) -> Path:
    """The folder a reference points to, building a tiny model there if needed."""
    if ref == "bundled":
        folder = bundled_folder()
        if not (folder / "mfv_model.json").is_file():
            raise BackendError(
                f"the bundled model is not at {folder}: train it with `python -m training "
                "--export resources/bundled` in a source checkout, or use --model tiny"
            )
        return folder
    tiny = parse_ref(ref)
    if tiny is not None:
        family, seed = tiny
        folder = cache_dir() / "models" / f"{family.tiny_ref}-s{seed}"
        if not folder.is_dir():
            tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            family.build_tiny(tmp, seed)
            shutil.rmtree(folder, ignore_errors=True)
            tmp.replace(folder)
        return folder
    folder = Path(ref).expanduser()
    if not folder.exists():
        tiny_refs = ", ".join(repr(f.tiny_ref) for f in FAMILIES.values())
        raise BackendError(f"model {ref!r} is neither 'bundled', {tiny_refs} nor an existing model folder")
    return folder


def load_backend(ref: str, device: str | None = "cpu", dtype: str = "fp32") -> Backend:
    key = (ref, str(device), dtype)
    with _LOCK:
        if key not in _LOADED:
            folder = model_folder(ref)
            family = family_of(ref)
            if _LOADED:  # let the resident model go before the next one takes its memory
                _LOADED.clear()
                gc.collect()
                _empty_device_caches()
            _LOADED[key] = family.backend_class().from_folder(folder, device=device, dtype=dtype)
        return _LOADED[key]


def _empty_device_caches() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def loaded_as(backend: Backend) -> tuple[str, str, str] | None:
    """The (reference, device, dtype) `load_backend` loaded this backend from (None: loaded otherwise):
    what another process (a worker of jobs/cluster.py) passes to `load_backend` for the same model."""
    with _LOCK:
        return next((key for key, b in _LOADED.items() if b is backend), None)
