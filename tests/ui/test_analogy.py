"""The Analogy tab, driven with real clicks (offscreen) on the bundled model: click A then B in a
source scene, C in a target scene, Solve; the composite weights are the job's and sum to 1, the
answer D is shown and outlined on the target, and the 1-shot ICL answer is shown beside it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt

from mfv_desktop.store import models as m
from mfv_desktop.store import scenes as repo

pytestmark = pytest.mark.usefixtures("qapp")


def in_relation(store, scene_id: int, relation: str) -> tuple[str, str]:
    data, _ = repo.get_scene(store, scene_id)
    return data.anchor, next(t.subject for t in data.relations if t.object == data.anchor and t.relation == relation)


def click_object(qtbot, view, name: str) -> None:
    pos = view.mapFromScene(QPointF(*view.box_of(name).center))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_point_at_a_b_and_c_and_solve(qtbot, window, stocked):
    vec, scenes = stocked
    scene_ids = list(scenes.values())
    source_id, target_id = scene_ids[1], scene_ids[6]
    a, b = in_relation(window.store, source_id, "above")
    c, _ = in_relation(window.store, target_id, "above")
    window.library.select_scene(source_id)
    window.show_scene(source_id)
    bar = window.tabs.tabBar()
    i = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == "Analogy")
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(i).center())
    panel = window.analogy_panel
    assert window.tabs.currentWidget().panel() is panel and panel.source.scene_id == source_id
    # the newest vector of each base relation is checked by default
    assert sorted(panel.vectors.checked_ids()) == sorted(vec.values())
    panel.target.scene_spin.setValue(target_id)
    assert panel.target.scene_id == target_id and not panel.solve_button.isEnabled()

    src, tgt = panel.source.view, panel.target.view
    click_object(qtbot, src, a)
    assert (panel.a_edit.name(), panel.b_edit.name()) == (a, "") and src.marked("A") == a
    other = next(n for n in src.object_names() if n not in (a, b))
    click_object(qtbot, src, other)  # B
    click_object(qtbot, src, a)  # a third click starts over: A again
    assert (panel.a_edit.name(), panel.b_edit.name()) == (a, "") and src.marked("B") is None
    click_object(qtbot, src, b)
    assert (panel.a_edit.name(), panel.b_edit.name()) == (a, b)
    assert src.marks() == {a: ["A"], b: ["B"]}
    assert not panel.solve_button.isEnabled() and "click C" in panel.hint.text()
    click_object(qtbot, tgt, c)
    assert panel.c_edit.name() == c and tgt.marks() == {c: ["C"]}
    assert panel.solve_button.isEnabled()

    qtbot.mouseClick(panel.solve_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60000)
    with window.store.session() as s:
        run = s.get(m.Run, panel.run_id)
        assert run.kind == "analogy" and run.status == "done"
        stored, spec = run.result, run.spec
    assert (spec["source_anchor"], spec["source_answer"], spec["target_anchor"]) == (a, b, c)
    assert sorted(spec["vectors"]) == sorted(f"vector:{v}" for v in vec.values())
    weights = panel.shown_weights()
    assert set(weights) == {"above", "below", "left", "right"}
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6)
    for rel, w in weights.items():
        assert w == pytest.approx(stored["weights"][rel], abs=1e-9)
        assert stored["weights"][rel] == pytest.approx(stored["probs"][rel] / sum(stored["probs"].values()), abs=1e-9)
    assert max(weights, key=weights.get) == "above"  # the source pair shows 'above'

    d = stored["composite"]["answer"].strip()
    assert f"D = {d}" in panel.answer.text()
    answers = panel.shown_answers()
    assert answers["composite FV"] == d
    assert answers["1-shot ICL"] == stored["1-shot ICL"]["answer"].strip() != ""
    assert answers["0-shot"] == stored["0-shot"]["answer"].strip()
    assert d in tgt.object_names() and tgt.marked(f"D = {d}") == d  # outlined on the target
    assert tgt.marked("C") == c


def test_the_default_base_vectors_follow_new_vectors_until_the_user_picks(qtbot, window, bundled_vectors):
    from mfv_desktop.jobs.stored import import_vector

    picker = window.analogy_panel.vectors
    ids = {}
    for rel in ("above", "below", "left", "right"):  # vectors built one by one, as on the AIE tab
        ids[rel] = import_vector(window.store, bundled_vectors["vectors"][rel])
        window.vectorsChanged.emit()
    assert sorted(picker.checked_ids()) == sorted(ids.values())
    picker.check([ids["above"], ids["left"]])  # the user's choice stays through reloads
    window.vectorsChanged.emit()
    assert sorted(picker.checked_ids()) == sorted([ids["above"], ids["left"]])
