"""The main window, driven through its real widgets (offscreen): draw and name boxes, place stamps,
confirm a suggestion with a key, undo and redo, restart and find every edit saved."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from mfv_desktop.store import scenes as repo

pytestmark = pytest.mark.usefixtures("qapp")


def open_window(qtbot, tmp_path, names=()):
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    w = MainWindow(data_dir=tmp_path / "data", settings=app_settings(tmp_path / "settings.ini"))
    queue = list(names)
    w.ask_name = lambda known, current: queue.pop(0) if queue else None
    w.confirm = lambda question: True
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    return w


def drag(qtbot, canvas, a, b):
    vp = canvas.viewport()
    pa, pb = canvas.mapFromScene(*a), canvas.mapFromScene(*b)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=pa)
    for t in (0.25, 0.5, 0.75, 1.0):
        qtbot.mouseMove(vp, QPoint(round(pa.x() + t * (pb.x() - pa.x())), round(pa.y() + t * (pb.y() - pa.y()))))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pb)


def key(qtbot, w, keys: str):
    """Press a shortcut as the user does (through the window's shortcut map)."""
    from PySide6.QtGui import QKeySequence
    from PySide6.QtTest import QTest

    seq = QKeySequence(keys)[0]
    if not w.isActiveWindow():  # shortcuts go to the active window
        w.activateWindow()
        qtbot.waitUntil(w.isActiveWindow, timeout=2000)
    QTest.keyClick(w.canvas.viewport(), seq.key(), seq.keyboardModifiers())


def labels_of(w):
    return {(lb.subject, lb.relation, lb.object): lb.status for lb in repo.get_scene(w.store, w.scene_id)[1]}


def test_draw_name_confirm_undo_redo_and_find_it_all_after_a_restart(qtbot, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (300, 300), "white").save(photo)
    w = open_window(qtbot, tmp_path, names=["cup", "apple"])
    assert w.banner.isVisible() and w.sample_button.isVisible()  # first run: the sample data set is offered
    w.import_paths([str(photo)])
    qtbot.waitUntil(lambda: w.scene_id is not None, timeout=20000)
    assert not w.banner.isVisible()
    key(qtbot, w, w.acts.shortcut("edit.new_box"))
    drag(qtbot, w.canvas, (100, 120), (160, 180))
    drag(qtbot, w.canvas, (100, 20), (160, 80))  # the apple above the cup
    objs = {o.name: o.box for o in repo.objects(w.store, w.scene_id)}
    assert set(objs) == {"cup", "apple"}
    assert objs["cup"].x0 == pytest.approx(100, abs=3) and objs["cup"].y1 == pytest.approx(180, abs=3)
    key(qtbot, w, w.acts.shortcut("label.suggest"))
    assert labels_of(w) == {("apple", "above", "cup"): "suggested", ("cup", "below", "apple"): "suggested"}
    assert len([a for a in w.canvas.arrow_items()]) == 2  # suggestions are drawn as arrows
    w.relations.table.selectRow(0)
    first = w.relations.current()
    key(qtbot, w, "Y")
    assert labels_of(w)[first] == "confirmed"
    second = w.relations.current()  # the next suggestion is current now
    assert second != first and labels_of(w)[second] == "suggested"
    key(qtbot, w, "J")  # J and K move through the list
    assert w.relations.current() == first
    key(qtbot, w, "K")
    assert w.relations.current() == second
    # relabel it with key 4 ("right", a deliberate mistake)
    key(qtbot, w, "4")
    assert (second[0], "right", second[2]) in labels_of(w) and second not in labels_of(w)
    key(qtbot, w, "Ctrl+Z")  # undo the relabel
    assert labels_of(w)[second] == "suggested"
    key(qtbot, w, "Ctrl+Z")  # undo the confirm
    assert labels_of(w)[first] == "suggested"
    key(qtbot, w, "Ctrl+Shift+Z")  # redo the confirm
    assert labels_of(w)[first] == "confirmed"
    w.relations.table.selectRow(0)
    assert w.relations.current() == second
    key(qtbot, w, "X")  # reject it
    assert labels_of(w)[second] == "rejected"
    assert len(w.canvas.arrow_items()) == 1  # rejected relations are not drawn
    saved = labels_of(w)
    scene = w.scene_id
    w.close()

    again = open_window(qtbot, tmp_path)
    again.library.select_scene(scene)
    qtbot.waitUntil(lambda: again.scene_id == scene, timeout=5000)
    assert labels_of(again) == saved
    assert {o.name: o.box for o in repo.objects(again.store, scene)} == objs
    again.close()


def test_place_stamps_on_a_drawn_scene_and_undo_a_move(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    w.curation.new_drawing()
    sid = w.scene_id
    assert sid is not None
    blank = Image.open(repo.get_scene(w.store, sid)[0].image).convert("L")
    assert blank.getextrema() == (255, 255)
    w.stamp_palette.choose("procedural:apple")
    qtbot.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, pos=w.canvas.mapFromScene(400, 200))
    w.stamp_palette.choose("procedural:cup")
    qtbot.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, pos=w.canvas.mapFromScene(400, 560))
    objs = {o.name: o for o in repo.objects(w.store, sid)}
    assert set(objs) == {"apple", "cup"} and objs["apple"].stamp == "procedural:apple"
    cx, cy = objs["apple"].box.center
    assert (cx, cy) == (pytest.approx(400, abs=2), pytest.approx(200, abs=2))
    drawn = Image.open(repo.get_scene(w.store, sid)[0].image).convert("L")
    assert drawn.getextrema()[0] < 200  # the image was drawn again with the stamps on it
    w.curation.suggest()
    assert labels_of(w)[("apple", "above", "cup")] == "suggested"
    # move the apple by dragging it (select mode), then undo the move
    key(qtbot, w, "V")
    before = objs["apple"].box
    drag(qtbot, w.canvas, (cx, cy), (cx + 100, cy))
    moved = next(o.box for o in repo.objects(w.store, sid) if o.name == "apple")
    assert moved.x0 == pytest.approx(before.x0 + 100, abs=3)
    key(qtbot, w, "Ctrl+Z")
    assert next(o.box for o in repo.objects(w.store, sid) if o.name == "apple") == before
    w.close()


def test_shortcuts_are_remapped_and_remembered_with_the_layout(qtbot, tmp_path):
    from mfv_desktop.ui.shell.actions import CheatSheet

    w = open_window(qtbot, tmp_path)
    w.acts.set_shortcut("label.confirm", "C")
    w.resize(w.width(), 640)
    w.docks["stamps"].hide()
    sheet = CheatSheet(w.acts, w.relations.vocabulary)
    rows = {sheet.table.item(r, 1).text(): sheet.table.item(r, 2).text() for r in range(sheet.table.rowCount())}
    assert rows["Confirm relation"] == "C" and rows["Relation 1: above"] == "1"
    w.close()
    again = open_window(qtbot, tmp_path)
    assert again.acts["label.confirm"].shortcut().toString() == "C"
    assert again.height() == 640 and again.docks["stamps"].isHidden() and not again.docks["relations"].isHidden()
    again.close()


def test_panels_keep_the_qt_methods_they_inherit(qtbot, window):
    """No attribute or method of ours hides a QWidget method (the window's palette, the settings
    dialog's actions, the relation panel's move): Qt code that calls them gets Qt's."""
    from PySide6.QtGui import QPalette

    from mfv_desktop.ui.shell.settings import SettingsDialog

    assert isinstance(window.palette(), QPalette)
    assert isinstance(SettingsDialog(window.settings, window.acts, window).actions(), list)
    window.relations.move(QPoint(3, 4))
    assert window.relations.pos() == QPoint(3, 4)


def test_a_second_window_on_the_same_store_is_read_only(qtbot, tmp_path):
    w = open_window(qtbot, tmp_path)
    other = open_window(qtbot, tmp_path / "x")  # another data folder: writable
    assert not other.store.read_only
    other.close()
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    second = MainWindow(data_dir=tmp_path / "data", settings=app_settings(tmp_path / "s2.ini"))
    qtbot.addWidget(second)
    assert second.store.read_only and "Read-only" in second.banner_text.text()
    second.close()
    w.close()


def test_generating_scenes_runs_in_the_background_and_fills_the_library(qtbot, tmp_path):
    from mfv_desktop.jobs import GenerateSpec

    w = open_window(qtbot, tmp_path)
    job = w.imports.generate(GenerateSpec(n_scenes=6, canvas=256, split="x"), "gen")
    assert job is not None and w.status.job_bar.isVisible()
    qtbot.waitUntil(lambda: job.status == "done", timeout=60000)
    qtbot.waitUntil(lambda: w.scene_id is not None, timeout=5000)
    assert repo.count_scenes(w.store, "gen") == 6 and not w.banner.isVisible()
    assert len(labels_of(w)) > 0  # generated scenes come with their relations
    w.close()


def test_opening_the_window_imports_no_torch(tmp_path):
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
        assert w.isVisible()
        print(sorted(m for m in ("torch", "transformers", "open_clip", "open_flamingo") if m in sys.modules))
        w.close()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_drop_images_rename_delete_add_a_custom_relation_and_settings(qtbot, tmp_path):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDropEvent

    from mfv_desktop.scenes import Box
    from mfv_desktop.ui.shell.settings import SettingsDialog

    folder = tmp_path / "drop"
    folder.mkdir()
    Image.new("RGB", (200, 200), "white").save(folder / "one.png")
    Image.new("RGB", (200, 100), "grey").save(folder / "two.jpg")
    w = open_window(qtbot, tmp_path, names=["mug"])
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    w.dropEvent(
        QDropEvent(
            QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
        )
    )
    qtbot.waitUntil(lambda: repo.count_scenes(w.store, "imported") == 2, timeout=20000)
    qtbot.waitUntil(lambda: w.scene_id is not None, timeout=5000)
    (job,) = w.jobs.jobs
    qtbot.waitUntil(lambda: job.status == "done")
    w.jobs_panel.refresh()
    (row,) = w.jobs_panel._rows  # the import is listed once: as the run it recorded in the store
    assert row[0] is job and row[1] is not None and row[1].id == job.run_id and row[1].kind == "import"
    assert row[1].status == "done" and row[1].result["added"] == 2
    sid = w.scene_id
    repo.add_object(w.store, sid, "cup", Box(10, 10, 50, 50))
    repo.add_object(w.store, sid, "key", Box(100, 10, 140, 50))
    w.show_scene(sid)
    cup = next(o.id for o in repo.objects(w.store, sid) if o.name == "cup")
    w.canvas.select_object(cup)
    key(qtbot, w, "F2")  # rename cup -> mug
    assert {o.name for o in repo.objects(w.store, sid)} == {"mug", "key"}
    w.relations.addRequested.emit("mug", "next_to", "key")  # a relation of the user's own
    assert labels_of(w) == {("mug", "next_to", "key"): "confirmed"}
    assert "next_to" in w.relations.vocabulary
    w.canvas.select_object(next(o.id for o in repo.objects(w.store, sid) if o.name == "key"))
    key(qtbot, w, "Delete")
    assert {o.name for o in repo.objects(w.store, sid)} == {"mug"} and labels_of(w) == {}
    key(qtbot, w, "Ctrl+Z")  # the object comes back with its relation
    assert labels_of(w) == {("mug", "next_to", "key"): "confirmed"}
    d = SettingsDialog(w.settings, w.acts, w)
    d.model.setCurrentText("/models/openflamingo-4b")
    d.device.setCurrentText("cuda")
    d.dtype.setCurrentText("bf16")
    d.editors["scene.next"].setKeySequence("N")
    d.accept()
    w.status.update_model()
    assert w.settings.value("device") == "cuda" and w.acts.shortcut("scene.next") == "N"
    assert "openflamingo-4b · cuda · bf16" in w.status.model_label.text()
    w.close()


def test_the_first_start_brings_the_sample_data_set_once(qtbot, window, monkeypatch):
    import mfv_desktop.ui.shell.imports as mw

    monkeypatch.setattr(mw, "SAMPLE_SCENES", 6)
    job = window.add_samples_on_first_start()
    assert job is not None
    qtbot.waitUntil(lambda: job.status == "done", timeout=60000)
    qtbot.waitUntil(lambda: window.scene_id is not None, timeout=5000)
    assert repo.count_scenes(window.store, "sample") == 6
    for sid in [s.id for s in repo.page_scenes(window.store, dataset="sample")]:
        repo.delete_scene(window.store, sid)
    assert window.add_samples_on_first_start() is None  # not again, even with the store empty


def test_reset_puts_the_settings_back_and_the_start_is_logged(tmp_path):
    from mfv_desktop.ui.shell.settings import app_settings

    ini = tmp_path / "settings.ini"
    s = app_settings(ini)
    s.setValue("model", "tiny")
    s.setValue("shortcuts/edit.new_box", "Ctrl+B")
    s.sync()
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen", "MFV_LOG_DIR": str(tmp_path / "logs")}
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mfv_desktop.ui.app",
            "--settings",
            str(ini),
            "--data-dir",
            str(tmp_path / "data"),
            "--reset",
            "--quit-after-show",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    s = app_settings(ini)
    assert s.value("model") is None and s.value("shortcuts/edit.new_box") is None
    assert (tmp_path / "data").is_dir()  # the store is kept
    log = (tmp_path / "logs" / "mfv_desktop.log").read_text()
    assert "mfv-desktop" in log and "started on" in log


def test_a_failed_job_is_in_the_log_shown_from_the_help_menu(qtbot, window):
    from mfv_desktop.jobs import ExtractSpec
    from mfv_desktop.logs import setup_logging
    from mfv_desktop.ui.shell.dialogs import LogDialog

    setup_logging()
    job = window.submit_spec(ExtractSpec(aie=str(window.store.data_dir / "nowhere"), relation="above"), "vector")
    qtbot.waitUntil(lambda: job.status == "failed", timeout=60000)
    window.acts["help.log"].trigger()
    dialog = next(w for w in window.findChildren(LogDialog))
    text = dialog.text.toPlainText()
    assert f"run {job.run_id} failed" in text and "Traceback (most recent call last)" in text
    assert "run `mfv aie` first" in text
    dialog.close()


def test_a_long_line_on_a_tab_does_not_widen_the_window_past_the_screen(qtbot, window):
    """A status line on the AIE tab ("run 2 running: loading the model…") and the Analogy tab's
    layout widened the window past a 1280 x 800 screen, hiding the right-hand docks."""
    window.resize(1280, 800)
    qtbot.wait(50)
    for key in ("aie", "sweep", "apply", "analogy"):
        panel = window.show_tab(key)
        if key == "aie":
            panel.status.setText("run 2 running: loading the model, then measuring every relation " * 4)
        qtbot.wait(50)
        assert window.width() <= 1280, (key, window.width())
        assert window.minimumSizeHint().width() <= 1280, key
