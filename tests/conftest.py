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
