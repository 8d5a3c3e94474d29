"""Drill-down on a head, from a double-click on the AIE map: its effect on each prompt (histogram and
two sorted lists), the mean equal to the AIE on the map, a prompt clicked opens in the prompt viewer;
a result recorded without per-prompt effects says so."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from tests.ui.prompt_runs import HEAD, HEAD_EFFECTS, make_runs

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def aie_tab(window, tmp_path):
    made = make_runs(window.store, tmp_path)
    panel = window.show_tab("aie")
    panel.refresh()
    panel.results.setCurrentIndex(panel.results.findData(made.aie_run))
    panel.show_run(made.aie_run)
    return panel, made


def _point(mp, layer: int, head: int) -> QPoint:
    return mp.view.mapFromScene(mp.plot.vb.mapViewToScene(QPointF(head, layer)))


def double_click_head(qtbot, panel, relation: str, layer: int, head: int):
    from mfv_desktop.ui.science.drilldown import HeadDrillDown

    mp = panel.maps[relation]
    qtbot.waitUntil(lambda: mp.isVisible() and mp.aie is not None)
    vp, at = mp.view.viewport(), _point(mp, layer, head)
    # what a widget gets from a double-click: press, release, double-click, release
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseDClick(vp, Qt.MouseButton.LeftButton, pos=at)
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=at)
    qtbot.waitUntil(lambda: panel.findChild(HeadDrillDown) is not None)
    return panel.findChild(HeadDrillDown)


def test_a_double_clicked_head_lists_its_prompts_by_effect_and_its_mean_is_the_maps_aie(qtbot, aie_tab):
    panel, made = aie_tab
    d = double_click_head(qtbot, panel, "above", *HEAD)
    assert d.isVisible() and d.head == HEAD and d.relation == "above"
    assert [i for i, _ in d.fixes] == [3, 0, 5, 2]
    assert [e for _, e in d.fixes] == pytest.approx([0.50, 0.30, 0.10, 0.05])
    assert [i for i, _ in d.breaks] == [4, 1]
    assert [e for _, e in d.breaks] == pytest.approx([-0.45, -0.20])
    assert d.mean == pytest.approx(sum(HEAD_EFFECTS) / len(HEAD_EFFECTS), abs=1e-6)
    assert d.mean == pytest.approx(float(panel.maps["above"].aie[HEAD]), abs=1e-6)  # the value on the map
    assert d.map_aie == pytest.approx(d.mean, abs=1e-6)
    assert "= the AIE on the map" in d.summary.text() and "fixes 4, breaks 2" in d.summary.text()
    fix_rows = [[d.fix_table.item(r, c).text() for c in range(4)] for r in range(d.fix_table.rowCount())]
    assert fix_rows[0] == ["+0.5000", "3", "cup → ball (scene s3)", "ball (✓)"]
    assert [d.break_table.item(r, 0).text() for r in range(2)] == ["-0.4500", "-0.2000"]
    assert d.break_table.item(0, 3).text() == "table (✗)"
    # the double-click left the head selected (its first click selected it)
    assert HEAD in panel.maps["above"].selected


def test_clicking_a_prompt_of_the_drill_down_opens_it_in_the_prompt_viewer(qtbot, window, aie_tab):
    from mfv_desktop.ui.science.prompts import PromptViewer

    panel, made = aie_tab
    d = double_click_head(qtbot, panel, "above", *HEAD)
    rect = d.break_table.visualItemRect(d.break_table.item(0, 2))
    qtbot.mouseClick(d.break_table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    (v,) = [v for v in window.findChildren(PromptViewer) if v.isVisible()]
    assert v.run_id == made.aie_run and (v.group.relation, v.group.condition) == ("above", "corrupted")
    assert v.current_prompt().index == 4
    # another prompt: the same viewer moves to it
    rect = d.fix_table.visualItemRect(d.fix_table.item(1, 2))
    qtbot.mouseClick(d.fix_table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert [w for w in window.findChildren(PromptViewer) if w.isVisible()] == [v]
    assert v.current_prompt().index == 0


def test_a_result_recorded_without_per_prompt_effects_says_so(qtbot, aie_tab):
    from mfv_desktop.ui.science.drilldown import NO_EFFECTS

    panel, made = aie_tab
    d = double_click_head(qtbot, panel, "below", 0, 0)
    assert NO_EFFECTS in d.summary.text()
    assert d.fix_table.rowCount() == 0 and d.break_table.rowCount() == 0 and d.mean is None


def test_a_single_click_still_only_selects(qtbot, aie_tab):
    from mfv_desktop.ui.science.drilldown import HeadDrillDown

    panel, _ = aie_tab
    mp = panel.maps["above"]
    qtbot.waitUntil(lambda: mp.isVisible())
    with qtbot.assertNotEmitted(mp.head_activated):
        qtbot.mouseClick(mp.view.viewport(), Qt.MouseButton.LeftButton, pos=_point(mp, 0, 1))
    assert mp.selected == [(0, 1)] and panel.findChild(HeadDrillDown) is None
