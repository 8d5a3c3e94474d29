"""A run's prompts, kept: every accuracy can be traced to the prompts and answers behind it, also
after the store is closed and opened again."""

from __future__ import annotations

from pathlib import Path

import pytest

from mfv_desktop.store import models as m
from mfv_desktop.store import open_store
from mfv_desktop.store.prompts import Answer, add_prompt_group, group_prompts, prompt_groups, read_task_set
from mfv_desktop.tasks import OPENFLAMINGO_TEMPLATE, Shot, Task, TaskSet, TaskSpec


def _task_set(n: int = 3) -> TaskSet:
    tasks = [
        Task(
            "above",
            "clean",
            (Shot(f"d{i}", f"/img/d{i}.png", "tree", "cat", "above"),),
            Shot(f"q{i}", f"/img/q{i}.png", "house", f"ball{i}", "above"),
        )
        for i in range(n)
    ]
    return TaskSet(TaskSpec(relations=("above",), k=1), tasks, scenes_hash="abc")


def _run(store) -> int:
    with store.session() as s:
        run = m.Run(kind="evaluate", spec={})
        s.add(run)
        s.flush()
        return int(run.id)


def test_a_runs_prompts_are_shown_with_text_expected_and_given_answer_after_a_reopen(store, tmp_path):
    run = _run(store)
    ts = _task_set()
    answers = [Answer(0, "ball0", True, 0.9), Answer(2, "tree", False, 0.1)]
    add_prompt_group(store, run, "above", "0-shot", ts, OPENFLAMINGO_TEMPLATE, answers, {"layer": 3})
    store.close()
    store = open_store(tmp_path / "data")
    try:
        (group,) = prompt_groups(store, run)
        assert (group.condition, group.n, group.n_correct, group.detail) == ("0-shot", 2, 1, {"layer": 3})
        assert group.accuracy == 0.5
        _, prompts = group_prompts(store, group.id)
        assert [(p.index, p.expected, p.predicted, p.correct) for p in prompts] == [
            (0, "ball0", "ball0", True),
            (2, "ball2", "tree", False),
        ]
        assert prompts[1].text == "<image>Q:tree. A:cat.<|endofchunk|><image>Q:house. A:"
        assert prompts[1].task.query.image == "/img/q2.png"
        assert read_task_set(store, ts.hash).hash == ts.hash
    finally:
        store.close()


def test_recording_a_condition_again_replaces_it_so_a_resumed_run_counts_each_prompt_once(store):
    run = _run(store)
    ts = _task_set()
    add_prompt_group(store, run, "above", "clean", ts, OPENFLAMINGO_TEMPLATE, [Answer(0, "x", False)])
    add_prompt_group(
        store, run, "above", "clean", ts, OPENFLAMINGO_TEMPLATE, [Answer(i, "ball0", i == 0) for i in range(3)]
    )
    (group,) = prompt_groups(store, run)
    assert (group.n, group.n_correct) == (3, 1)
    assert len(group_prompts(store, group.id)[1]) == 3


def test_an_answer_for_a_task_the_set_does_not_have_is_refused(store):
    with pytest.raises(ValueError, match="task 5 of a task set of 3"):
        add_prompt_group(
            store, _run(store), "above", "clean", _task_set(), OPENFLAMINGO_TEMPLATE, [Answer(5, "x", False)]
        )
    with store.session() as s:
        assert s.query(m.PromptGroup).count() == 0


def test_deleting_a_run_deletes_its_prompt_answers(store):
    run = _run(store)
    add_prompt_group(store, run, "above", "clean", _task_set(), OPENFLAMINGO_TEMPLATE, [Answer(0, "x", False)])
    with store.session() as s:
        s.delete(s.get(m.Run, run))
    with store.session() as s:
        assert s.query(m.PromptAnswer).count() == 0


def test_each_heads_effect_on_each_prompt_is_kept_with_its_aie_result(store):
    import numpy as np

    from mfv_desktop.store.prompts import add_prompt_effects, read_prompt_effects
    from mfv_desktop.store.results import add_aie_result

    meta = {
        "relation": "above",
        "k": 1,
        "n_prompts": 2,
        "corruption": "paper",
        "clean_accuracy": 0.5,
        "clean_tasks_hash": "c" * 64,
        "corrupted_tasks_hash": "d" * 64,
    }
    aie_id = add_aie_result(store, _run(store), np.zeros((2, 3)), np.zeros((2, 3, 4)), meta)
    assert read_prompt_effects(store, aie_id) is None
    effects = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    add_prompt_effects(store, aie_id, "d" * 64, [4, 7], effects)
    got = read_prompt_effects(store, aie_id)
    assert got.task_set_hash == "d" * 64 and got.indices.tolist() == [4, 7]
    assert np.array_equal(got.effects, effects)
    with pytest.raises(ValueError, match="2 x 3 heads"):
        add_prompt_effects(store, aie_id, "d" * 64, [0], np.zeros((1, 3, 3)))


def test_a_prompts_image_is_found_again_when_its_recorded_path_moved(store, tmp_path):
    from PIL import Image

    from mfv_desktop.scenes import Box, SceneObject
    from mfv_desktop.store import scenes as repo
    from mfv_desktop.store.prompts import shot_image

    Image.new("RGB", (40, 30), "white").save(tmp_path / "p.png")
    sid = repo.create_scene(store, "d", tmp_path / "p.png", name="s1", objects=[SceneObject("cup", Box(1, 2, 10, 20))])
    kept = repo.get_scene(store, sid)[0].image
    assert shot_image(store, "s1", kept).path == Path(kept)
    assert shot_image(store, "s1", kept).boxes == {"cup": (1, 2, 10, 20)}
    # the data folder moved: the file name (its content hash) finds the store's copy
    moved = shot_image(store, "a scene of another store", "/old/data/images/xx/" + Path(kept).name)
    assert moved.path == Path(kept) and moved.boxes == {}
    # a path from elsewhere: the store's scene of that name
    assert shot_image(store, "s1", "/gone/photo.png").path == Path(kept)
    assert shot_image(store, "nowhere", "/gone/photo.png").path is None
