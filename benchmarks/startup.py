"""Cold start of the desktop app: from process start to a visible main window (the whole process:
interpreter, imports, store, widgets), median of 5 runs, on a store with a few scenes.

    .venv/bin/python benchmarks/startup.py [--runs 5] [--platform offscreen|xcb]

labelme, the annotation tool users know, takes about 1.1 s on this machine (issue 5).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--platform", default=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mfv-startup-"))
    env = {**os.environ, "QT_QPA_PLATFORM": a.platform}
    cmd = [
        sys.executable,
        "-m",
        "mfv_desktop.ui.app",
        "--data-dir",
        str(tmp / "data"),
        "--settings",
        str(tmp / "settings.ini"),
        "--quit-after-show",
    ]
    subprocess.run(cmd, env=env, capture_output=True, check=True)  # first run: creates the store
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mfv_desktop.cli",
            "-q",
            "--store",
            str(tmp / "data"),
            "generate",
            "--n",
            "20",
            "--canvas",
            "256",
            "--dataset",
            "sample",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    times = []
    for _ in range(a.runs):
        t0 = time.time()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        shown = float(next(line.split()[1] for line in r.stdout.splitlines() if line.startswith("shown ")))
        times.append(shown - t0)
        print(f"process start -> window shown: {1e3 * times[-1]:7.1f} ms")
    med = statistics.median(times)
    print(f"startup median_ms={1e3 * med:.0f} labelme_ms=1100 ratio={med / 1.1:.2f}")


if __name__ == "__main__":
    main()
