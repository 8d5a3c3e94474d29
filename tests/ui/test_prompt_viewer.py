"""The prompt viewer, opened from the tabs with real clicks: the run it shows, its groups, each prompt's
images, text, expected and given answer, right or wrong; filters; a prompt shown large; images found
again when their recorded path moved; a run recorded before prompts were kept says so."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QLabel

from tests.ui.prompt_runs import RIGHT, make_runs

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def made(window, tmp_path):
    return make_runs(window.store, tmp_path)


def viewer_of(window, run_id):
    from mfv_desktop.ui.science.prompts import PromptViewer

    found = [v for v in window.findChildren(PromptViewer) if v.run_id == run_id and v.isVisible()]
    assert len(found) == 1, found
    return found[0]


def click_row(qtbot, table, row: int, col: int = 2) -> None:
    rect = table.visualRect(table.model().index(row, col))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_the_viewer_opens_from_the_aie_tab_filters_wrong_prompts_and_shows_one_large(qtbot, window, made):
    panel = window.show_tab("aie")
    panel.refresh()
    panel.show_run(made.aie_run)
    qtbot.mouseClick(panel.prompts_button, Qt.MouseButton.LeftButton)
    v = viewer_of(window, made.aie_run)
    qtbot.waitExposed(v)
    assert f"run {made.aie_run}" in v.header.text() and "aie" in v.header.text() and "bundled" in v.header.text()
    groups = [v.chooser.itemText(i) for i in range(v.chooser.count())]
    assert groups == ["above · clean · 5/5 = 1.00", "above · corrupted · 3/6 = 0.50"]
    assert not v.empty.isVisible()

    qtbot.keyClick(v.chooser, Qt.Key.Key_Down)  # the corrupted group
    assert v.group.condition == "corrupted" and v.count.text() == "6 of 6 prompts shown"
    v.which.setFocus()
    qtbot.keyClick(v.which, Qt.Key.Key_Down)
    qtbot.keyClick(v.which, Qt.Key.Key_Down)  # "wrong only"
    assert v.which.currentText() == "wrong only"
    shown = v.shown_prompts()
    assert [p.index for p in shown] == [i for i in range(6) if i not in RIGHT]
    assert all(not p.correct and p.predicted == "table" and p.expected == "ball" for p in shown)
    assert v.count.text() == "3 of 6 prompts shown"
    model = v.table.model()
    verdicts = [model.index(r, 5).data() for r in range(model.rowCount())]
    assert verdicts == ["✗ wrong"] * 3
    wrong_colour = model.index(0, 5).data(Qt.ItemDataRole.ForegroundRole)
    assert wrong_colour.red() > wrong_colour.green()  # red, not the right answers' green
    assert model.index(0, 1).data(Qt.ItemDataRole.DecorationRole).width() > 40  # thumbnails, drawn when shown

    qtbot.keyClicks(v.search, "s4")  # scene s4 is the query of prompt 4, a demo of prompt 3 (right)
    assert [p.index for p in v.shown_prompts()] == [4]
    click_row(qtbot, v.table, 0)
    assert v.current_prompt().index == 4
    head = v.detail_head.text()
    assert "prompt 4" in head and "expected <b>ball</b>" in head and "model <b>table</b>" in head and "✗ wrong" in head
    assert v.full_text.toPlainText() == "<image>Q:cup. A:table.<|endofchunk|><image>Q:cup. A:"
    cards = [v.cards_row.itemAt(i).widget() for i in range(v.cards_row.count() - 1)]
    assert len(cards) == 2  # the demonstration and the query
    query_image = cards[1].findChildren(QLabel)[0]
    assert not query_image.pixmap().isNull()  # its recorded path moved: the store's scene s4 has it
    assert "query · scene s4" in cards[1].findChildren(QLabel)[1].text()


def test_an_image_nowhere_to_be_found_says_so(qtbot, window, made):
    from mfv_desktop.ui.science.prompts import open_prompts

    v = open_prompts(window.ctx, made.aie_run, "above", "corrupted", 5, parent=window)
    assert v.current_prompt().index == 5
    cards = [v.cards_row.itemAt(i).widget() for i in range(v.cards_row.count() - 1)]
    texts = [lab.text() for lab in cards[1].findChildren(QLabel)]
    assert "image missing" in texts
    assert not cards[0].findChildren(QLabel)[0].pixmap().isNull()  # the demonstration's image is there


def test_a_run_recorded_before_prompts_were_kept_says_so(qtbot, window, made):
    from mfv_desktop.ui.science.prompts import OLD_RUN

    panel = window.show_tab("aie")
    panel.refresh()
    panel.show_run(made.old_run)
    qtbot.mouseClick(panel.prompts_button, Qt.MouseButton.LeftButton)
    v = viewer_of(window, made.old_run)
    assert v.empty.isVisible() and v.empty.text() == OLD_RUN
    assert "run it again" in OLD_RUN and not v.table.isVisible() and not v.chooser.isVisible()


def test_double_clicking_a_sweep_point_opens_the_prompts_of_that_layer_and_strength(qtbot, window, made):
    panel = window.show_tab("sweep")
    panel.refresh()
    panel.results.setCurrentIndex(panel.results.findData(made.sweep_run))
    panel.show_run(made.sweep_run)
    qtbot.wait(50)
    vb = panel.plot.getPlotItem().vb
    point = panel.plot.mapFromScene(vb.mapViewToScene(QPointF(1, 0.8)))  # layer 1, × 2
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=point)
    from mfv_desktop.ui.science.prompts import PromptViewer

    assert not [v for v in window.findChildren(PromptViewer) if v.isVisible()]  # one click chooses the point
    # what a widget gets from the second click of a double-click: double-click, release
    qtbot.mouseDClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.mouseRelease(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=point)
    v = viewer_of(window, made.sweep_run)
    assert (v.group.relation, v.group.condition) == ("above", "L1 ×2")
    assert v.chooser.currentText() == "above · L1 ×2 · 4/5 = 0.80"


def test_apply_offers_the_prompts_once_a_result_is_shown_and_no_expected_answer_is_not_wrong(qtbot, window, made):
    panel = window.show_tab("apply")
    assert not panel.prompts_button.isEnabled()
    panel._done((made.apply_run, {"anchor": "cup", "layer": 1, "without": "table", "with": "ball", "bars": []}))
    assert panel.prompts_button.isEnabled()
    qtbot.mouseClick(panel.prompts_button, Qt.MouseButton.LeftButton)
    v = viewer_of(window, made.apply_run)
    assert [v.chooser.itemText(i) for i in range(v.chooser.count())][1].startswith("above · with vectors")
    model = v.table.model()
    assert (model.index(0, 3).data(), model.index(0, 4).data(), model.index(0, 5).data()) == (
        "unknown",
        "table",
        "? no expected answer",
    )
    v.which.setFocus()
    qtbot.keyClick(v.which, Qt.Key.Key_Down)
    qtbot.keyClick(v.which, Qt.Key.Key_Down)  # wrong only: an answer with no expected answer is not wrong
    assert v.shown_prompts() == [] and v.count.text() == "0 of 1 prompt shown"


def test_the_viewer_and_the_drill_down_are_built_on_first_use_only(tmp_path):
    """Opening the window, and the AIE and sweep tabs, imports neither (start-up time)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from mfv_desktop.ui import MainWindow
        from mfv_desktop.ui.shell.settings import app_settings
        w = MainWindow(data_dir={str(tmp_path / "data")!r}, settings=app_settings({str(tmp_path / "s.ini")!r}))
        w.show()
        app.processEvents()
        w.show_tab("aie"), w.show_tab("sweep"), w.show_tab("apply")
        print(sorted(m for m in sys.modules if m.endswith((".science.prompts", ".science.drilldown"))))
        w.close()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_the_jobs_panel_opens_the_prompts_of_the_selected_run(qtbot, window, made):
    panel = window.jobs_panel
    panel.refresh()
    panel.select_run(made.sweep_run)
    assert panel.prompts_button.isEnabled()
    qtbot.mouseClick(panel.prompts_button, Qt.MouseButton.LeftButton)
    assert viewer_of(window, made.sweep_run).chooser.count() > 0
