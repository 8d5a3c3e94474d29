"""The app's log file: one per user, in the platform's log folder (rotated at 2 MB, 3 kept). Jobs
write when they start and end, and failures with their traceback; uncaught errors land here too."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

LOG_NAME = "mfv_desktop.log"


def log_dir() -> Path:
    env = os.environ.get("MFV_LOG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_log_dir("mfv_desktop", appauthor=False))


def log_file() -> Path:
    return log_dir() / LOG_NAME


def setup_logging(level: int = logging.INFO) -> Path:
    """Send the package's log records to the log file (once per process); returns the file."""
    path = log_file()
    logger = logging.getLogger("mfv_desktop")
    if not any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(level)
        previous = sys.excepthook

        def excepthook(kind, value, tb):
            logger.error("uncaught error", exc_info=(kind, value, tb))
            previous(kind, value, tb)

        sys.excepthook = excepthook
    return path


def tail(path: Path, max_bytes: int = 200_000) -> str:
    """The end of a log file (what fits in max_bytes), or a note that there is none yet."""
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            f.seek(max(f.tell() - max_bytes, 0))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return f"(no log yet: {path})"
