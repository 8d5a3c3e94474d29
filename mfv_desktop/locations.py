"""Where things are on disk, without importing any model library."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("MFV_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("mfv_desktop", appauthor=False))


def shipped(name: str) -> Path:
    """A folder the app ships (resources, database): inside the package when installed from a wheel
    or bundled, beside it in a source checkout."""
    here = Path(__file__).resolve().parent
    inside = here / name
    return inside if inside.is_dir() else here.parent / name


def bundled_folder() -> Path:
    env = os.environ.get("MFV_BUNDLED_MODEL")
    return Path(env) if env else shipped("resources") / "bundled"
