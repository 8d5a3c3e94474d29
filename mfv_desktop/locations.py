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


def bundled_folder() -> Path:
    env = os.environ.get("MFV_BUNDLED_MODEL")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "resources" / "bundled"
