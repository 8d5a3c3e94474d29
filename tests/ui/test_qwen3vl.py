"""A new user on the second model family: pick the tiny Qwen3-VL in the model manager (and check it),
run AIE from its tab, build a vector from the top heads and apply it to a scene, all with clicks."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select

from mfv_desktop.store import models as m
from mfv_desktop.store import scenes as repo
from tests.ui.test_apply import click_object, click_vector, open_tab
from tests.ui.test_models import manager, press, wait
from tests.ui.test_science import _add_scenes, _last_status

pytestmark = pytest.mark.usefixtures("qapp")


def test_the_tiny_qwen3vl_runs_aie_builds_a_vector_and_applies_it_from_the_gui(qtbot, window):
    d = manager(qtbot, window)
    d.radios["tiny"].click()
    d.tiny.setCurrentIndex(d.tiny.findData("tiny-qwen3vl"))
    press(qtbot, d.check_button)
    wait(qtbot, d)
    assert "qwen3vl" in d.output.toPlainText() and "4 layers" in d.output.toPlainText()
    press(qtbot, d.use_button)
    assert window.model_ref().model == "tiny-qwen3vl"

    _add_scenes(window.store, n=16)
    panel = open_tab(qtbot, window, "AIE")
    panel.n_prompts.setValue(8)
    for rel in ("below", "left", "right"):
        panel.relation_boxes[rel].setChecked(False)
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _last_status(window.store, "aie") == "done", timeout=120000)
    qtbot.waitUntil(lambda: panel.shown_run is not None and panel.maps["above"].aie is not None)
    assert panel.maps["above"].aie.shape == (4, 4)  # the tiny Qwen3-VL's layers x query heads
    with window.store.session() as s:
        row = s.scalars(select(m.AIEResultRow)).one()
        assert row.provenance["family"] == "qwen3vl" and row.provenance["template"].startswith("qwen3vl")

    qtbot.mouseClick(panel.top_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.vectorsChanged, timeout=60000):
        qtbot.mouseClick(panel.build_button, Qt.MouseButton.LeftButton)
    with window.store.session() as s:
        v = s.scalars(select(m.VectorRow)).one()
        assert v.model_id.startswith("tiny-qwen3vl") and v.hook_point.startswith("residual:qwen3vl")

    scene = repo.page_scenes(window.store, limit=1, dataset="sample")[0].id
    window.library.refresh()
    window.library.select_scene(scene)
    window.show_scene(scene)
    apply = open_tab(qtbot, window, "Apply")
    assert apply.pane.scene_id == scene
    anchor = repo.get_scene(window.store, scene)[0].anchor
    click_object(qtbot, apply.pane.view, anchor)
    click_vector(qtbot, apply.vectors, v.id)
    qtbot.mouseClick(apply.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: apply.result is not None, timeout=60000)
    bars = apply.shown_bars()
    assert bars and all(0.0 <= b["with"] <= 1.0 and 0.0 <= b["without"] <= 1.0 for b in bars)
    assert apply.run_id is not None and _last_status(window.store, "apply") == "done"
