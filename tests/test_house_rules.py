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


def test_scenes_and_tasks_need_neither_torch_nor_qt():
    assert _loaded_after("import mfv_desktop.scenes, mfv_desktop.tasks") == set()


def test_the_engine_imports_with_qt_absent():
    loaded = _loaded_after("import mfv_desktop.backends, mfv_desktop.fv, mfv_desktop.jobs, mfv_desktop.cli",
                           block=("PySide6", "pyqtgraph", "superqt"))
    assert "torch" in loaded and "PySide6" not in loaded


def test_the_app_module_does_not_import_torch():
    assert "torch" not in _loaded_after("import mfv_desktop.ui.app")


def test_job_specs_load_without_torch():
    """The GUI builds job specs before any model is needed: that must not import torch."""
    assert _loaded_after("import mfv_desktop.jobs; mfv_desktop.jobs.AIESpec(scenes='s', out='o')") == set()
