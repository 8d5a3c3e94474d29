"""The shipped model shows in-context learning of spatial relations (on 200 fresh prompts, CPU)."""

from __future__ import annotations

import pytest

from mfv_desktop.backends.loading import bundled_folder
from mfv_desktop.progress import run_to_end


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    from mfv_desktop.jobs import GenerateSpec, run_generate
    from mfv_desktop.scenes import load_scene_set

    folder = tmp_path_factory.mktemp("fresh")
    run_to_end(run_generate(GenerateSpec(out=str(folder), n_scenes=200, seed=4242, split="fresh")))
    return folder, load_scene_set(folder)


def test_the_bundled_model_ships_and_is_small():
    folder = bundled_folder()
    assert (folder / "mfv_model.json").is_file(), (
        "resources/bundled is missing: python -m training --export resources/bundled"
    )
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size <= 30 * 2**20
    assert (folder / "MODEL_CARD.md").is_file()


def test_four_shot_beats_zero_shot_by_forty_points(fresh):
    from mfv_desktop.backends import load_backend
    from mfv_desktop.fv import evaluate
    from mfv_desktop.scenes import BASE_RELATIONS
    from mfv_desktop.tasks import TaskSpec, build_task_set

    folder, scenes = fresh
    backend = load_backend("bundled")
    four = build_task_set(scenes, folder, TaskSpec(relations=BASE_RELATIONS, k=4, seed=7)).tasks
    zero = build_task_set(scenes, folder, TaskSpec(relations=BASE_RELATIONS, kind="zeroshot", seed=7)).tasks
    assert len(four) == len(zero) == 200
    acc4 = run_to_end(evaluate(backend, four, batch_size=40)).accuracy
    acc0 = run_to_end(evaluate(backend, zero, batch_size=100)).accuracy
    assert acc4 - acc0 >= 0.40, (acc4, acc0)
