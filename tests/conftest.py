"""Shared fixtures: a tiny random OpenFlamingo and small generated scene sets, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


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


@pytest.fixture(scope="session")
def scene_folder(tmp_path_factory) -> Path:
    """24 scenes in split 'a' and 12 in split 'b', on a small canvas (fast to draw)."""
    from mfv_desktop.jobs import GenerateSpec, run_generate

    folder = tmp_path_factory.mktemp("scenes")
    for split, n, seed in (("a", 24, 0), ("b", 12, 1)):
        for _ in run_generate(GenerateSpec(out=str(folder), n_scenes=n, seed=seed, split=split,
                                           canvas=256)):
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
    execute(AIESpec(scenes=str(root / "scenes"), out=str(root / "aie"), n_prompts=24), run_aie, root / "aie")
    vectors = {}
    for rel in BASE_RELATIONS:
        vectors[rel] = str(root / f"{rel}.safetensors")
        execute(ExtractSpec(aie=str(root / "aie"), relation=rel, out=vectors[rel], strength=2.0), run_extract, root)
    return {"scenes": root / "scenes", "aie": root / "aie", "vectors": vectors}


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window on a fresh store and settings file in tmp_path, shown (closed after the test)."""
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.settings import app_settings

    w = MainWindow(data_dir=tmp_path / "data", settings=app_settings(tmp_path / "settings.ini"))
    w.confirm = lambda question: True
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.close()


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
    run_to_end(repo.add_scenes(window.store, "bundled", scenes, origin="generated", label_source="geometry",
                               label_status="confirmed"))
    window.library.refresh()
    return ids, {s.name: s.id for s in repo.page_scenes(window.store, limit=1000, dataset="bundled")}
