"""What the labels say a task's answer is (`expected_answers`, `relations_between`): the same reading
of a label as the task builder's (the anchor is the label's object, the answer its subject), for
base and composite relations; a scene with no confirmed labels is told apart from one without a
label for the asked relation."""

from __future__ import annotations

import pytest

from mfv_desktop.progress import run_to_end
from mfv_desktop.scenes import Box, SceneObject, resolve_image
from mfv_desktop.store import StoreError
from mfv_desktop.store import scenes as repo
from mfv_desktop.store.labels import expected_answers, relations_between
from mfv_desktop.tasks import TaskSpec, build_task_set


def stored(store, folder, scenes, dataset: str) -> dict[str, int]:
    """The scenes in the store (labels confirmed): scene name -> id."""
    scenes = [s.with_(image=str(resolve_image(folder, s))) for s in scenes]
    run_to_end(repo.add_scenes(store, dataset, scenes, origin="generated", label_source="geometry"))
    return {s.name: s.id for s in repo.page_scenes(store, limit=1000, dataset=dataset)}


@pytest.mark.parametrize("which", ["base", "diagonal"])
def test_every_task_query_expects_what_the_task_builder_answers(store, scene_folder, diagonal_folder, which):
    from mfv_desktop.scenes import BASE_RELATIONS, DIAGONAL_RELATIONS, load_scene_set

    folder, relations = (scene_folder, BASE_RELATIONS) if which == "base" else (diagonal_folder, DIAGONAL_RELATIONS)
    scenes = load_scene_set(folder)
    ids = stored(store, folder, scenes, which)
    tasks = build_task_set(scenes, folder, TaskSpec(relations, k=0, kind="zeroshot")).tasks
    assert {t.relation for t in tasks} == set(relations)
    for t in tasks:
        q = t.query
        assert expected_answers(store, ids[q.scene_id], q.anchor, t.relation) == [q.answer]
        # the pair shows the relation (the answer is the label's subject, the anchor its object)
        assert t.relation in relations_between(store, ids[q.scene_id], q.answer, q.anchor)
        assert t.relation not in (relations_between(store, ids[q.scene_id], q.anchor, q.answer) or [])


def test_no_labels_none_for_the_relation_and_object_ids(store, abs_scenes):
    sid = repo.create_scene(store, "mine", abs_scenes[0].image, "photo")
    cup = repo.add_object(store, sid, "cup", Box(10, 60, 40, 90))
    repo.add_object(store, sid, "apple", Box(10, 10, 40, 40))
    repo.add_object(store, sid, "pear", Box(60, 10, 90, 40))
    # no label at all: nothing is known
    assert expected_answers(store, sid, "cup", "above") is None
    assert relations_between(store, sid, "apple", "cup") is None
    # only suggestions (or rejected labels) are not labels a task is built from
    repo.suggest_label_changes(store, sid)
    assert expected_answers(store, sid, "cup", "above") is None
    labels = {(lb.subject, lb.relation, lb.object): lb.id for lb in repo.get_scene(store, sid)[1]}
    repo.set_label_status(store, labels[("apple", "above", "cup")], "confirmed")
    assert expected_answers(store, sid, "cup", "above") == ["apple"]
    assert expected_answers(store, sid, cup, "above") == ["apple"]  # the anchor by its object id
    assert relations_between(store, sid, "apple", "cup") == ["above"]
    # labelled, but not in this relation from this anchor: an empty answer, not "unknown"
    assert expected_answers(store, sid, "cup", "below") == []
    assert expected_answers(store, sid, "apple", "above") == []
    assert relations_between(store, sid, "pear", "cup") == []
    # two objects in the relation: both are named
    repo.add_label(store, sid, "pear", "above", "cup")
    assert expected_answers(store, sid, "cup", "above") == ["apple", "pear"]
    repo.set_label_status(store, labels[("apple", "above", "cup")], "rejected")
    assert expected_answers(store, sid, "cup", "above") == ["pear"]


def test_a_composite_relation_is_its_own_label(store, abs_scenes):
    sid = repo.create_scene(
        store,
        "mine",
        abs_scenes[0].image,
        "photo",
        objects=[SceneObject("tree", Box(50, 50, 80, 80)), SceneObject("sun", Box(10, 10, 40, 40))],
    )
    repo.add_label(store, sid, "sun", "above", "tree")
    repo.add_label(store, sid, "sun", "left", "tree")
    # the task builder asks for labels named below_left / above_left; the parts do not make one
    assert expected_answers(store, sid, "tree", "above_left") == []
    repo.add_label(store, sid, "sun", "above_left", "tree")
    assert expected_answers(store, sid, "tree", "above_left") == ["sun"]
    assert relations_between(store, sid, "sun", "tree") == ["above", "left", "above_left"]


def test_unknown_scenes_and_objects_are_named(store, abs_scenes):
    sid = repo.create_scene(store, "mine", abs_scenes[0].image, "photo")
    with pytest.raises(StoreError, match="no scene 999"):
        expected_answers(store, 999, "cup", "above")
    with pytest.raises(StoreError, match="no object named 'cup'"):
        expected_answers(store, sid, "cup", "above")
    with pytest.raises(StoreError, match="no object with id 12345"):
        relations_between(store, sid, 12345, "cup")
