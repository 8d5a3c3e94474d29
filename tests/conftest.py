"""Shared fixtures: a tiny random OpenFlamingo and small generated scene sets, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: seconds a test marked slow may take (pyproject's `timeout` is for the rest), unless it names its own
SLOW_TIMEOUT = 1800
#: test files that drive Qt widgets: marked gui (select or skip them with -m gui / -m "not gui")
GUI_FILES = ("ui/test_*.py",)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.path.match(pattern) for pattern in GUI_FILES):
            item.add_marker(pytest.mark.gui)
        if item.get_closest_marker("slow") is not None and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """The tiny model reference builds into a per-session cache, never the user's."""
    os.environ["MFV_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["MFV_LOG_DIR"] = str(tmp_path_factory.mktemp("logs"))
    yield


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    from mfv_desktop.backends.small import SmallConfig, build_small_model

    return build_small_model(tmp_path_factory.mktemp("tiny"), SmallConfig(seed=0))


@pytest.fixture(scope="session")
def tiny(tiny_folder):
    import torch

    from mfv_desktop.backends.openflamingo import OpenFlamingoBackend

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    return OpenFlamingoBackend.from_folder(tiny_folder)


class FakeHub:
    """The Hub as `download_model` sees it: each repository's listing; a download writes the file
    (`contents` by name, else a stub) and is recorded. `fail` is raised by every listing."""

    def __init__(
        self, repos: dict[str, list[str]], contents: dict[str, str] | None = None, fail: Exception | None = None
    ) -> None:
        self.repos, self.contents, self.fail, self.fetched = repos, contents or {}, fail, []

    def list_repo_files(self, repo: str) -> list[str]:
        if self.fail is not None:
            raise self.fail
        return self.repos[repo]

    def hf_hub_download(self, repo: str, name: str, local_dir: str) -> str:
        self.fetched.append((repo, name))
        dest = Path(local_dir) / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(self.contents.get(name, "{}"))
        return str(dest)


@pytest.fixture
def fake_hub(monkeypatch):
    """`fake_hub(repos, contents=None, fail=None)`: downloads in this test go to a FakeHub (no network)."""
    from mfv_desktop.backends import download

    def use(*args, **kw) -> FakeHub:
        hub = FakeHub(*args, **kw)
        monkeypatch.setattr(download, "_hub", lambda: hub)
        return hub

    return use


@pytest.fixture
def add_family(monkeypatch):
    """Register a model family for one test: `add_family(name, model_type)` gives a Family whose
    folders have a config.json with that model_type and safetensors weights; its backend (a module
    made up under mfv_desktop.backends) only checks files. Code that asks the registry sees it."""
    import json
    import sys
    import types

    from mfv_desktop.backends import registry
    from mfv_desktop.errors import BackendError

    def add(name: str, model_type: str) -> registry.Family:
        def detect(folder: Path) -> bool:
            try:
                return json.loads((folder / "config.json").read_text()).get("model_type") == model_type
            except (OSError, ValueError):
                return False

        class Backend:
            @staticmethod
            def check_files(folder: Path) -> dict:
                weights = sorted(folder.glob("*.safetensors"))
                if not weights:
                    raise BackendError(f"{folder} has no *.safetensors")
                return {
                    "model_id": f"{name}-from-{folder.name}",
                    "files": {"weights": ", ".join(w.name for w in weights)},
                }

            @staticmethod
            def from_folder(folder: Path, device: str | None = "cpu", dtype: str = "fp32") -> types.SimpleNamespace:
                """Loads as a model of 2 layers of 2 heads (nothing to run)."""
                Backend.check_files(folder)
                g = {"n_layers": 2, "n_heads": 2, "d_head": 4, "d_model": 8}
                return types.SimpleNamespace(
                    model_id=f"{name}-from-{folder.name}", geometry=types.SimpleNamespace(to_json=lambda: g)
                )

        def build(folder: Path, seed: int) -> Path:
            """The family's tiny model: a folder it recognises."""
            folder = Path(folder)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
            (folder / "model.safetensors").write_bytes(b"")
            return folder

        module = types.ModuleType(f"mfv_desktop.backends.test_{name}")
        module.Backend = Backend
        module.build = build  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, module.__name__, module)
        fam = registry.Family(
            name=name,
            backend=f"test_{name}:Backend",
            detect=detect,
            tokenizer_file=lambda f: None,
            answer_prefix="A:",
            tiny_ref=f"tiny-{name}",
            tiny_builder=f"test_{name}:build",
            hint=f"a {name} folder needs config.json (model_type {model_type}) and *.safetensors",
        )
        monkeypatch.setitem(registry.FAMILIES, name, fam)
        return fam

    return add


@pytest.fixture(scope="session")
def scene_folder(tmp_path_factory) -> Path:
    """24 scenes in split 'a' and 12 in split 'b', on a small canvas (fast to draw)."""
    from mfv_desktop.jobs import GenerateSpec, run_generate

    folder = tmp_path_factory.mktemp("scenes")
    for split, n, seed in (("a", 24, 0), ("b", 12, 1)):
        for _ in run_generate(GenerateSpec(out=str(folder), n_scenes=n, seed=seed, split=split, canvas=256)):
            pass
    return folder


@pytest.fixture(scope="session")
def diagonal_folder(tmp_path_factory) -> Path:
    """16 diagonal scenes in split 'd' (small canvas): relations the bundled model was not trained on,
    whose clean prompts it answers about half right."""
    from mfv_desktop.jobs import GenerateSpec, run_generate
    from mfv_desktop.progress import run_to_end

    folder = tmp_path_factory.mktemp("diagonal")
    run_to_end(run_generate(GenerateSpec(out=str(folder), n_scenes=16, seed=0, split="d", canvas=256, diagonal=True)))
    return folder


@pytest.fixture(scope="session")
def scenes(scene_folder):
    from mfv_desktop.scenes import load_scene_set

    return load_scene_set(scene_folder)


@pytest.fixture(scope="session")
def abs_scenes(scene_folder, scenes):
    """The scenes with absolute image paths, as they come into the store."""
    from mfv_desktop.scenes import resolve_image

    return [s.with_(image=str(resolve_image(scene_folder, s))) for s in scenes]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh store in a temporary data folder (closed after the test)."""
    from mfv_desktop.store import open_store

    monkeypatch.setenv("MFV_DATA_DIR", str(tmp_path / "data"))
    s = open_store(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture(scope="session")
def bundled_vectors(tmp_path_factory) -> dict:
    """Scenes, an AIE run and one extracted vector per base relation on the bundled model, made once
    per session: {"scenes": folder, "aie": folder, "vectors": {relation: vector file}}."""
    from mfv_desktop.jobs import AIESpec, ExtractSpec, GenerateSpec, execute, run_aie, run_extract, run_generate
    from mfv_desktop.progress import run_to_end
    from mfv_desktop.scenes import BASE_RELATIONS

    root = tmp_path_factory.mktemp("bundled-vectors")
    run_to_end(run_generate(GenerateSpec(out=str(root / "scenes"), n_scenes=40, seed=3, split="x")))
    run_to_end(
        execute(AIESpec(scenes=str(root / "scenes"), out=str(root / "aie"), n_prompts=24), run_aie, root / "aie")
    )
    vectors = {}
    for rel in BASE_RELATIONS:
        vectors[rel] = str(root / f"{rel}.safetensors")
        run_to_end(
            execute(ExtractSpec(aie=str(root / "aie"), relation=rel, out=vectors[rel], strength=2.0), run_extract, root)
        )
    return {"scenes": root / "scenes", "aie": root / "aie", "vectors": vectors}


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window on a fresh store and settings file in tmp_path, shown (closed after the test)."""
    from shiboken6 import isValid

    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    w = MainWindow(data_dir=tmp_path / "data", settings=app_settings(tmp_path / "settings.ini"))
    w.confirm = lambda question: True

    def close(w) -> None:  # a job in a long step: the window goes when it has stopped (not deleted before)
        w.close()
        qtbot.waitUntil(lambda: not w.isVisible(), timeout=60000)

    qtbot.addWidget(w, before_close_func=close)
    w.show()
    qtbot.waitExposed(w)
    yield w
    if isValid(w):
        close(w)


@pytest.fixture
def stocked(window, bundled_vectors) -> tuple[dict[str, int], dict[str, int]]:
    """The bundled vectors and the scenes they were made from, in the window's store (data set
    "bundled"): ({relation: vector id}, {scene name: scene id})."""
    from mfv_desktop.jobs.stored import import_vector
    from mfv_desktop.progress import run_to_end
    from mfv_desktop.scenes import load_scene_set, resolve_image
    from mfv_desktop.store import scenes as repo

    ids = {rel: import_vector(window.store, path) for rel, path in bundled_vectors["vectors"].items()}
    window.vectorsChanged.emit()
    folder = bundled_vectors["scenes"]
    scenes = [s.with_(image=str(resolve_image(folder, s))) for s in load_scene_set(folder)]
    run_to_end(
        repo.add_scenes(
            window.store, "bundled", scenes, origin="generated", label_source="geometry", label_status="confirmed"
        )
    )
    window.library.refresh()
    return ids, {s.name: s.id for s in repo.page_scenes(window.store, limit=1000, dataset="bundled")}
