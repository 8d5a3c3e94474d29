"""The rules of the house: arrows point down, Qt only in ui/, no torch in scenes/ and tasks/."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ("torch", "transformers", "open_clip", "open_flamingo", "PySide6", "pyqtgraph", "superqt")


def _loaded_after(code: str, block: tuple[str, ...] = ()) -> set[str]:
    """Run `code` in a fresh interpreter (with `block` made unimportable) and list heavy modules loaded."""
    script = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split('.')[0] in {block!r}:
                    raise ImportError(f"{{name}} is blocked in this test")
        sys.meta_path.insert(0, Block())
        {code}
        print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_scenes_tasks_and_the_store_need_neither_torch_nor_qt():
    assert _loaded_after("import mfv_desktop.scenes, mfv_desktop.scenes.importers, mfv_desktop.tasks, "
                         "mfv_desktop.store, mfv_desktop.store.scenes, mfv_desktop.store.exchange, "
                         "mfv_desktop.jobs.stored") == set()


def test_nothing_from_outside_is_unpickled():
    """torch.load only with weights_only=True; no pickle, no numpy object arrays."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    bad = []
    for path in [*(root / "mfv_desktop").rglob("*.py"), *(root / "database").rglob("*.py")]:
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            if "weights_only=True" not in call:
                bad.append(f"{path.name}: {call}")
        if re.search(r"^\s*(import pickle|from pickle|import dill|import joblib)", text, re.M) or "allow_pickle=True" in text:
            bad.append(f"{path.name}: pickle")
    assert bad == []


def test_the_engine_imports_with_qt_absent():
    loaded = _loaded_after("import mfv_desktop.backends, mfv_desktop.fv, mfv_desktop.jobs, mfv_desktop.cli",
                           block=("PySide6", "pyqtgraph", "superqt"))
    assert "torch" in loaded and "PySide6" not in loaded


def test_the_app_module_does_not_import_torch():
    assert "torch" not in _loaded_after("import mfv_desktop.ui.app")


def test_job_specs_load_without_torch():
    """The GUI builds job specs before any model is needed: that must not import torch."""
    assert _loaded_after("import mfv_desktop.jobs; mfv_desktop.jobs.AIESpec(scenes='s', out='o')") == set()


def test_store_commands_of_the_cli_load_no_model_library(tmp_path):
    code = f"from mfv_desktop.cli import main; assert main(['-q', '--store', {str(tmp_path)!r}, 'datasets']) == 0"
    assert _loaded_after(code) == set()
