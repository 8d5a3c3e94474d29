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
    assert (
        _loaded_after(
            "import mfv_desktop.scenes, mfv_desktop.scenes.importers, mfv_desktop.tasks, "
            "mfv_desktop.store, mfv_desktop.store.scenes, mfv_desktop.store.exchange, "
            "mfv_desktop.jobs.stored"
        )
        == set()
    )


def test_nothing_from_outside_is_unpickled():
    """torch.load only with weights_only=True; no pickle, no numpy object arrays."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    bad = []
    for path in [p for folder in ("mfv_desktop", "database", "training") for p in (root / folder).rglob("*.py")]:
        text = path.read_text()
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            if "weights_only=True" not in call:
                bad.append(f"{path.name}: {call}")
        if (
            re.search(r"^\s*(import pickle|from pickle|import dill|import joblib)", text, re.M)
            or "allow_pickle=True" in text
        ):
            bad.append(f"{path.name}: pickle")
    assert bad == []


def test_the_engine_imports_with_qt_absent():
    loaded = _loaded_after(
        "import mfv_desktop.backends, mfv_desktop.fv, mfv_desktop.jobs, mfv_desktop.cli",
        block=("PySide6", "pyqtgraph", "superqt"),
    )
    assert "torch" in loaded and "PySide6" not in loaded


def test_the_app_module_does_not_import_torch():
    assert "torch" not in _loaded_after("import mfv_desktop.ui.app")


def test_job_specs_load_without_torch():
    """The GUI builds job specs before any model is needed: that must not import torch."""
    assert _loaded_after("import mfv_desktop.jobs; mfv_desktop.jobs.AIESpec(scenes='s', out='o')") == set()


def test_the_specs_load_without_torch_qt_or_the_engine():
    """specs.py is the GUI's, the CLI's and the store's: it needs no model, no Qt and no job code."""
    code = (
        "import sys, mfv_desktop.specs as s; s.spec_from_json(s.spec_to_json(s.AIESpec(model='tiny'))); "
        "assert not [m for m in sys.modules if m.startswith(('mfv_desktop.jobs', 'mfv_desktop.backends', "
        "'mfv_desktop.fv', 'mfv_desktop.store', 'mfv_desktop.ui'))], sorted(sys.modules)"
    )
    assert _loaded_after(code) == set()


def test_store_commands_of_the_cli_load_no_model_library(tmp_path):
    code = f"from mfv_desktop.cli import main; assert main(['-q', '--store', {str(tmp_path)!r}, 'datasets']) == 0"
    assert _loaded_after(code) == set()


def test_no_model_family_is_named_above_the_backends():
    """fv/, jobs/, ui/ and the CLI talk to every model through the protocol and the registry: they
    import no family's adapter module and touch no family's internals."""
    import re
    from pathlib import Path

    from mfv_desktop.backends.registry import FAMILIES

    root = Path(__file__).resolve().parents[1] / "mfv_desktop"
    adapters = (
        {f.backend.partition(":")[0] for f in FAMILIES.values()}
        | {f.tiny_builder.partition(":")[0] for f in FAMILIES.values()}
        | {"last_position"}
    )
    forbidden = re.compile(
        r"backends\.(" + "|".join(sorted(adapters)) + r")\b"  # a family's own module
        r"|\b(gpt_neox|lang_encoder|language_model|vision_x|_encode_vision_x|image_grid_thw|pixel_values)\b"
        r"|\bfamily\s*[!=]=|\bfamily\s+in\b"  # branching on the family's name
        r"|\bgetattr\(\s*backend\b"
    )  # capabilities are declared, not probed
    found = [
        f"{p.relative_to(root)}:{i}: {line.strip()}"
        for folder in ("fv", "jobs", "ui")
        for p in sorted((root / folder).rglob("*.py"))
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if forbidden.search(line)
    ]
    found += [
        f"cli.py:{i}: {line.strip()}"
        for i, line in enumerate((root / "cli.py").read_text().splitlines(), 1)
        if forbidden.search(line)
    ]
    assert not found, "\n".join(found)
    assert adapters >= {"openflamingo", "small"}  # the pattern covers the families there are


def test_the_name_check_asks_the_registry_without_torch():
    assert (
        _loaded_after("import mfv_desktop.backends.registry, mfv_desktop.ui.curation.naming", block=("torch",))
        - {"PySide6"}
        == set()
    )


def test_every_downloadable_model_has_its_family_registered():
    from mfv_desktop.backends.download import DOWNLOADS
    from mfv_desktop.backends.registry import FAMILIES

    assert {d.family for d in DOWNLOADS.values()} <= set(FAMILIES)


#: modules allowed over MAX_MODULE_LINES, each with the reason a split would scatter it (keep this short)
LONG_MODULES = {
    "mfv_desktop/scenes/objects.py": "the stamp kinds: one small drawing per object kind in a table; split, a kind's "
    "drawing and its entry would sit apart",
    "training/bundled.py": "the bundled model's training script, its five steps in order as its docstring tells them",
}
#: the issue's "about 450 lines", counted in ruff-formatted lines (formatting this code base added about
#: 10%: a call that does not fit on one line takes one line per argument)
MAX_MODULE_LINES = 500


def test_no_module_is_long_without_a_stated_reason():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    long = {
        str(f.relative_to(root)).replace("\\", "/"): sum(1 for _ in f.open(encoding="utf-8"))
        for folder in ("mfv_desktop", "training", "benchmarks")
        for f in (root / folder).rglob("*.py")
    }
    long = {f: n for f, n in long.items() if n > MAX_MODULE_LINES}
    unexplained = sorted(f"{f} ({n} lines)" for f, n in long.items() if f not in LONG_MODULES)
    assert not unexplained, (
        f"over {MAX_MODULE_LINES} lines: {unexplained}; split along what the module does, "
        "or add it to LONG_MODULES with the reason"
    )
    stale = sorted(set(LONG_MODULES) - set(long))
    assert not stale, f"no longer over {MAX_MODULE_LINES} lines, drop from LONG_MODULES: {stale}"
    assert len(LONG_MODULES) <= 4, "the table of long modules must stay short"
