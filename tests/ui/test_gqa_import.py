"""File > Import > GQA scene graphs…: the dialog's fields are the importer's filters, the import runs
as a job of the queue, and the dialog then says what was kept and why the rest was dropped, with the
scenes in the store."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from mfv_desktop.store import scenes as repo  # noqa: E402
from tests.scenes.test_gqa_report import graphs, write  # noqa: E402

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def window(qtbot, tmp_path):
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    w = MainWindow(data_dir=tmp_path / "data", settings=app_settings(tmp_path / "settings.ini"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def open_dialog(qtbot, w):
    file_menu = next(a.menu() for a in w.menuBar().actions() if a.text().replace("&", "") == "File")
    import_menu = next(a.menu() for a in file_menu.actions() if a.menu() and a.text().replace("&", "") == "Import")
    action = next(a for a in import_menu.actions() if a.text() == "GQA scene graphs…")
    action.trigger()
    d = w.imports.gqa_dialog
    qtbot.waitExposed(d)
    return d


def type_into(qtbot, edit, text: str) -> None:
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


def test_the_gqa_dialog_imports_with_its_filters_and_says_what_it_kept_and_why(qtbot, window, tmp_path):
    path, images = write(tmp_path, graphs())
    d = open_dialog(qtbot, window)
    # the fields start at the importer's defaults (the authors' filter)
    assert d.min_area.value() == pytest.approx(5.0) and d.max_area.value() == pytest.approx(50.0)
    assert d.anchor.currentData() == "most_relations" and d.relations.count() == 7
    type_into(qtbot, d.scene_graphs, str(path))
    type_into(qtbot, d.images, str(images))
    type_into(qtbot, d.dataset, "gqa small")
    qtbot.mouseClick(d.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.result_ is not None, timeout=30000)
    text = d.summary.text()
    assert "kept 4 of 9 scenes: 4 had no object between 5% and 50% of the image" in text
    assert "1 named an object id that does not exist" in text and "image broken: cup above object 999" in text
    assert "4 scenes added to the data set 'gqa small'" in text
    label = d.summary  # all of it in view: the dialog grew to the wrapped text
    assert label.wordWrap() and label.height() >= label.heightForWidth(label.width())
    assert d.rect().contains(label.geometry())
    assert {r["name"]: r["n_scenes"] for r in repo.datasets(window.store)}["gqa small"] == 4
    qtbot.waitUntil(lambda: window.library.current_scene_id() is not None, timeout=5000)

    # the fields are the filters: nothing passes a 60%-90% size, and the dialog says so
    d.min_area.clear()
    qtbot.keyClicks(d.min_area, "60")
    d.max_area.clear()
    qtbot.keyClicks(d.max_area, "90")
    anchor_rules = [d.anchor.itemData(i) for i in range(d.anchor.count())]
    d.anchor.setCurrentIndex(anchor_rules.index("largest"))
    type_into(qtbot, d.dataset, "none")
    qtbot.mouseClick(d.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.result_ is not None and d.result_["dataset"] == "none", timeout=30000)
    assert "kept 0 of 9 scenes: 9 had no object between 60% and 90% of the image" in d.summary.text()

    # a relation unchecked is a relation dropped: the report says which and why
    for i in range(d.relations.count()):
        item = d.relations.item(i)
        if item.data(Qt.ItemDataRole.UserRole) == "to the left of":
            d.relations.setCurrentItem(item)
            qtbot.keyClick(d.relations, Qt.Key.Key_Space)  # the keyboard's way to uncheck it
            assert item.checkState() == Qt.CheckState.Unchecked
    d.min_area.clear()
    qtbot.keyClicks(d.min_area, "5")
    d.max_area.clear()
    qtbot.keyClicks(d.max_area, "50")
    type_into(qtbot, d.dataset, "no left")
    qtbot.mouseClick(d.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: d.result_ is not None and d.result_["dataset"] == "no left", timeout=30000)
    assert "5 had fewer than 1 of the chosen relations" in d.summary.text()
    assert "were not among the chosen relations" in d.summary.text()


def test_wrong_fields_are_told_in_the_dialog_before_any_job(qtbot, window, tmp_path):
    d = open_dialog(qtbot, window)
    qtbot.mouseClick(d.import_button, Qt.MouseButton.LeftButton)
    assert "give the scene-graph JSON and the images folder" in d.summary.text()
    path, images = write(tmp_path, graphs())
    type_into(qtbot, d.scene_graphs, str(path))
    type_into(qtbot, d.images, str(tmp_path / "nowhere"))
    qtbot.mouseClick(d.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "failed" in d.summary.text(), timeout=30000)
    assert "nowhere" in d.summary.text() and d.import_button.isEnabled()
