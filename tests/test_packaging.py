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
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("mfv_desktop-*.whl")
    assert wheel.name.startswith(f"mfv_desktop-{mfv_desktop.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in (
        "mfv_desktop/resources/bundled/checkpoint.safetensors",
        "mfv_desktop/resources/bundled/mfv_model.json",
        "mfv_desktop/resources/bundled/lm/model.safetensors",
        "mfv_desktop/resources/icons/mfv_desktop.png",
        "mfv_desktop/database/env.py",
        "mfv_desktop/ui/app.py",
    ):
        assert f in names, f
    migrations = {p.name for p in (ROOT / "database" / "versions").glob("*.py")}
    assert {n.rsplit("/", 1)[-1] for n in names if n.startswith("mfv_desktop/database/versions/")} >= migrations
    meta = zipfile.ZipFile(wheel).read(f"mfv_desktop-{mfv_desktop.__version__}.dist-info/METADATA").decode()
    assert not [n for n in names if n.startswith("training/")], "the bundled model's trainer is not part of the app"
    requires = [Requirement(line.split(":", 1)[1]) for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    (pyside,) = [r for r in requires if r.name.lower().startswith("pyside6")]
    assert pyside.name.lower() == "pyside6-essentials"  # the Addons (WebEngine, Charts...) are not used
    assert "6.12.0" not in pyside.specifier  # it aborts the app (tests/ui/test_qt_runtime.py)
    entry = zipfile.ZipFile(wheel).read(f"mfv_desktop-{mfv_desktop.__version__}.dist-info/entry_points.txt").decode()
    assert "mfv = mfv_desktop.cli:main" in entry and "[gui_scripts]\nmfv-desktop = mfv_desktop.ui.app:main" in entry


def test_version_is_the_packages():
    r = subprocess.run(
        [sys.executable, "-m", "mfv_desktop.ui.app", "--version"], capture_output=True, text=True, timeout=60
    )
    assert r.stdout.strip() == f"mfv-desktop {mfv_desktop.__version__}"


def test_the_constraints_pin_every_dependency_within_its_range():
    """installer/constraints.txt is complete (a fresh machine gets what CI tested): every dependency and test
    tool of pyproject.toml is pinned there, to a version its range allows."""
    from packaging.utils import canonicalize_name

    pins = {}
    for line in (ROOT / "installer" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for dep in map(Requirement, [*project["dependencies"], *extras["test"], *extras["cluster"]]):
        name = canonicalize_name(dep.name)
        assert name in pins, f"pin {dep.name} in installer/constraints.txt"
        assert pins[name] in dep.specifier, f"{dep.name}=={pins[name]} is outside {dep}"
    assert "pyside6" not in pins and "pyside6-addons" not in pins  # Essentials only
