from __future__ import annotations

import json
from collections import Counter

import pytest

from mfv_desktop.scenes import BASE_RELATIONS
from mfv_desktop.tasks import OPENFLAMINGO_TEMPLATE, TaskError, TaskSet, TaskSpec, build_task_set


def _build(scenes, folder, **kw):
    return build_task_set(scenes, folder, TaskSpec(relations=BASE_RELATIONS, **kw))


def test_scene_i_serves_relation_i_mod_r_with_context_from_other_scenes(scenes, scene_folder):
    ts = _build(scenes, scene_folder, k=4, split="a")
    split = [s for s in scenes if s.split == "a"]
    assert len(ts.tasks) == len(split)
    for i, (scene, task) in enumerate(zip(split, ts.tasks)):
        assert task.relation == BASE_RELATIONS[i % 4]
        assert task.query.scene_id == scene.id
        assert task.answer == scene.target(scene.anchor, task.relation)
        ids = [d.scene_id for d in task.demos]
        assert len(ids) == 4 and scene.id not in ids and len(set(ids)) == 4
        assert all(d.scene_id.startswith("a") for d in task.demos)
        assert all(d.relation == task.relation for d in task.demos)
    assert Counter(t.relation for t in ts.tasks) == {r: 6 for r in BASE_RELATIONS}


def test_prompt_is_the_papers_format(scenes, scene_folder):
    t = _build(scenes, scene_folder, k=2, split="a").tasks[0]
    text = OPENFLAMINGO_TEMPLATE.render(t)
    d0, d1 = t.demos
    assert text == (
        f"<image>Q:{d0.anchor}. A:{d0.answer}.<|endofchunk|>"
        f"<image>Q:{d1.anchor}. A:{d1.answer}.<|endofchunk|><image>Q:{t.query.anchor}. A:"
    )
    assert len(t.images) == 3 and t.images[-1].endswith(".png")


def test_paper_corruption_keeps_images_and_query_and_labels_one_relation_each(scenes, scene_folder):
    clean = _build(scenes, scene_folder, k=4, split="a", seed=3)
    bad = _build(scenes, scene_folder, k=4, split="a", seed=3, kind="corrupted", corruption="paper")
    by_id = {s.id: s for s in scenes}
    for c, x in zip(clean.tasks, bad.tasks):
        assert x.query == c.query
        assert sorted(d.scene_id for d in x.demos) == sorted(d.scene_id for d in c.demos)
        assert sorted(d.relation for d in x.demos) == sorted(BASE_RELATIONS)  # one demo per relation
        for d in x.demos:  # each label is the object in that relation in that image
            assert by_id[d.scene_id].target(d.anchor, d.relation) == d.answer


def test_a_one_relation_task_set_is_corrupted_with_all_relations(scenes, scene_folder):
    """AIE builds its corrupted prompts one relation at a time: they must still mix the relations."""
    bad = build_task_set(scenes, scene_folder, TaskSpec(relations=("left",), k=4, split="a", kind="corrupted"))
    for t in bad.tasks:
        assert sorted(d.relation for d in t.demos) == sorted(BASE_RELATIONS)


def test_todd_corruption_permutes_answers_among_demonstrations(scenes, scene_folder):
    clean = _build(scenes, scene_folder, k=4, split="a", seed=5)
    bad = _build(scenes, scene_folder, k=4, split="a", seed=5, kind="corrupted", corruption="todd")
    for c, x in zip(clean.tasks, bad.tasks):
        assert [d.anchor for d in x.demos] == [d.anchor for d in c.demos]
        assert sorted(d.answer for d in x.demos) == sorted(d.answer for d in c.demos)
        assert all(xd.answer != cd.answer for xd, cd in zip(x.demos, c.demos))  # a derangement


def test_zero_shot_has_no_demonstrations(scenes, scene_folder):
    ts = _build(scenes, scene_folder, k=4, split="b", kind="zeroshot")
    assert ts.spec.k == 0 and all(t.k == 0 and len(t.images) == 1 for t in ts.tasks)


def test_deterministic_with_a_content_hash(scenes, scene_folder, tmp_path):
    a = _build(scenes, scene_folder, k=4, split="a", seed=1)
    b = _build(scenes, scene_folder, k=4, split="a", seed=1)
    c = _build(scenes, scene_folder, k=4, split="a", seed=2)
    assert a.hash == b.hash and a.tasks == b.tasks
    assert c.hash != a.hash
    path = a.save(tmp_path / "t.json")
    assert TaskSet.load(path).hash == a.hash
    d = json.loads(path.read_text())
    d["tasks"][0]["query"]["answer"] = "zzz"
    path.write_text(json.dumps(d))
    with pytest.raises(TaskError, match="hash mismatch"):
        TaskSet.load(path)


def test_max_per_relation_and_too_few_scenes(scenes, scene_folder):
    ts = _build(scenes, scene_folder, k=1, split="b", max_per_relation=2)
    assert Counter(t.relation for t in ts.tasks) == {r: 2 for r in BASE_RELATIONS}
    with pytest.raises(TaskError, match="K=20 needs at least 21"):
        _build(scenes, scene_folder, k=20, split="b")
    with pytest.raises(TaskError, match="no scenes in split"):
        _build(scenes, scene_folder, split="nope")
