"""The Apply tab, driven with real clicks (offscreen) on the bundled model: click the anchor's box,
check the 'above' vector, set a strength, Apply; the bars are the job's numbers, the answer changes
with the vector and is outlined on the image. Missing inputs give a message and no job."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPointF, Qt

from mfv_desktop.progress import run_to_end
from mfv_desktop.store import models as m
from mfv_desktop.store import scenes as repo

pytestmark = pytest.mark.usefixtures("qapp")

STRENGTH = 2.0


def target_of(store, scene_id: int, relation: str) -> tuple[str, str]:
    """(anchor, the object in `relation` to it) of a stored scene."""
    data, _ = repo.get_scene(store, scene_id)
    return data.anchor, next(t.subject for t in data.relations if t.object == data.anchor and t.relation == relation)


def click_object(qtbot, view, name: str) -> None:
    box = view.box_of(name)
    pos = view.mapFromScene(QPointF(*box.center))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def click_vector(qtbot, picker, vector_id: int) -> None:
    qtbot.mouseClick(picker.tree.viewport(), Qt.MouseButton.LeftButton, pos=picker.row_rect(vector_id).center())


def open_tab(qtbot, window, title: str):
    bar = window.tabs.tabBar()
    i = next(i for i in range(window.tabs.count()) if window.tabs.tabText(i) == title)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(i).center())
    assert window.tabs.currentIndex() == i
    panel = window.tabs.widget(i).panel()  # built when first shown
    qtbot.waitExposed(panel)
    qtbot.wait(50)  # laid out and painted, as a user sees it before pointing at it
    return panel


def test_apply_the_above_vector_to_a_clicked_anchor(qtbot, window, stocked, bundled_vectors):
    from mfv_desktop.jobs import ApplySpec, execute, run_apply

    vec, scenes = stocked
    # the engine first: a scene whose 0-shot answer is not the object above the anchor, and the vector fixes it
    chosen = None
    for _name, sid in sorted(scenes.items()):
        anchor, above = target_of(window.store, sid, "above")
        image = repo.get_scene(window.store, sid)[0].image
        ref = run_to_end(
            execute(
                ApplySpec(
                    image=image,
                    anchor=anchor,
                    vectors=(bundled_vectors["vectors"]["above"],),
                    strength=STRENGTH,
                    model=window.model_ref(),
                ),
                run_apply,
                window.store.data_dir / "check",
            )
        )
        if ref["without"] != above and ref["with"] == above:
            chosen = (sid, anchor, above, ref)
            break
    assert chosen is not None, "the bundled 'above' vector fixes no 0-shot answer"
    sid, anchor, above, ref = chosen

    window.library.select_scene(sid)
    window.show_scene(sid)
    panel = open_tab(qtbot, window, "Apply")
    assert panel is window.apply_panel and panel.pane.scene_id == sid  # it follows the current scene
    view = panel.pane.view
    click_object(qtbot, view, anchor)
    assert panel.anchor.name() == anchor and view.marked("anchor") == anchor
    click_vector(qtbot, panel.vectors, vec["above"])
    assert panel.vectors.checked_refs() == [f"vector:{vec['above']}"]
    assert panel.layer.currentData() is None and "vector's own" in panel.layer.currentText()
    qtbot.mouseClick(panel.own_strength, Qt.MouseButton.LeftButton)
    assert not panel.own_strength.isChecked() and panel.strength.isEnabled()
    panel.strength.setValue(STRENGTH)
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=60000)

    with window.store.session() as s:
        run = s.get(m.Run, panel.run_id)
        assert run.kind == "apply" and run.status == "done"
        stored, spec = run.result, run.spec
    assert spec["anchor"] == anchor and spec["strength"] == STRENGTH and spec["vectors"] == [f"vector:{vec['above']}"]
    shown = panel.shown_bars()
    assert [b["token"] for b in shown] == [b["token"] for b in stored["bars"]] == [b["token"] for b in ref["bars"]]
    for got, job, engine in zip(shown, stored["bars"], ref["bars"]):
        for k in ("without", "with"):
            assert got[k] == pytest.approx(job[k], abs=1e-6) and got[k] == pytest.approx(engine[k], abs=1e-4)
    assert (stored["without"], stored["with"]) == (ref["without"], above)
    text = panel.summary.text()
    assert f"without: <b>{ref['without']}</b>" in text and above in text
    # both answers are objects of the scene: the prediction with the vector is outlined, 0-shot's too
    assert view.marked("predicted") == above and view.marked("0-shot") == ref["without"]
    assert view.marked("anchor") == anchor


def test_missing_inputs_give_a_message_and_no_job(qtbot, window, stocked, tmp_path):
    vec, scenes = stocked
    panel = open_tab(qtbot, window, "Apply")
    sid = sorted(scenes.values())[2]
    panel.pane.scene_spin.setValue(sid)  # a scene by its id
    assert panel.pane.mode() == "scene by id" and panel.pane.scene_id == sid
    click_vector(qtbot, panel.vectors, vec["left"])
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert "No anchor" in panel.message.text() and panel.message.isVisible()
    assert "No anchor" in window.statusBar().currentMessage()
    anchor, _ = target_of(window.store, sid, "left")
    click_object(qtbot, panel.pane.view, anchor)
    click_vector(qtbot, panel.vectors, vec["left"])  # unchecked again
    assert panel.vectors.checked_refs() == []
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    assert "No function vector" in panel.message.text()
    assert window.jobs.jobs == [] and panel.result is None

    # an image file without boxes: the anchor is typed, with the store's names to complete it
    photo = tmp_path / "photo.png"
    Image.new("RGB", (200, 160), "white").save(photo)
    panel.pane.ask_image_path = lambda: str(photo)
    qtbot.mouseClick(panel.pane.open_button, Qt.MouseButton.LeftButton)
    assert panel.pane.mode() == "image file" and panel.pane.image_path == str(photo)
    assert panel.pane.objects == [] and panel.anchor.name() == ""  # the old anchor is gone with its image
    qtbot.keyClicks(panel.anchor, anchor)
    click_vector(qtbot, panel.vectors, vec["left"])
    spec = panel.spec()
    assert (Path(spec.image), spec.anchor, spec.vectors, spec.strength) == (
        photo,
        anchor,
        (f"vector:{vec['left']}",),
        None,
    )
    assert anchor in panel.anchor.completer().model().stringList()
