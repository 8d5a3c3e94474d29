"""The wheel carries what an installed app needs: the package with every subpackage, the bundled
model and the icon (resources/), the migrations (database/), both entry points, one version."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

import mfv_desktop

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "mfv_desktop").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_the_wheel_has_the_model_the_migrations_and_the_entry_points(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(ROOT),
                        "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("mfv_desktop-*.whl")
    assert wheel.name.startswith(f"mfv_desktop-{mfv_desktop.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("mfv_desktop/resources/bundled/checkpoint.safetensors", "mfv_desktop/resources/bundled/mfv_model.json",
              "mfv_desktop/resources/bundled/lm/model.safetensors", "mfv_desktop/resources/icons/mfv_desktop.png",
              "mfv_desktop/database/env.py", "mfv_desktop/ui/app.py"):
        assert f in names, f
    migrations = {p.name for p in (ROOT / "database" / "versions").glob("*.py")}
    assert {n.rsplit("/", 1)[-1] for n in names if n.startswith("mfv_desktop/database/versions/")} >= migrations
    meta = zipfile.ZipFile(wheel).read(f"mfv_desktop-{mfv_desktop.__version__}.dist-info/METADATA").decode()
    (pyside,) = [Requirement(line.split(":", 1)[1]) for line in meta.splitlines()
                 if line.startswith("Requires-Dist:") and Requirement(line.split(":", 1)[1]).name.lower() == "pyside6"]
    assert "6.12.0" not in pyside.specifier  # it aborts the app (tests/test_qt_runtime.py)
    entry = zipfile.ZipFile(wheel).read(f"mfv_desktop-{mfv_desktop.__version__}.dist-info/entry_points.txt").decode()
    assert "mfv = mfv_desktop.cli:main" in entry and "[gui_scripts]\nmfv-desktop = mfv_desktop.ui.app:main" in entry


def test_version_is_the_packages():
    r = subprocess.run([sys.executable, "-m", "mfv_desktop.ui.app", "--version"], capture_output=True, text=True,
                       timeout=60)
    assert r.stdout.strip() == f"mfv-desktop {mfv_desktop.__version__}"
