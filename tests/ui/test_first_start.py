"""The first start as a new user sees it (issue 18, defect 8): the sample data set coming in, images
imported, a drawing begun by accident. Each test drives the real widgets."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolBar

from mfv_desktop.store import scenes as repo

pytestmark = pytest.mark.usefixtures("qapp")


def open_window(qtbot, tmp_path):
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    w = MainWindow(data_dir=tmp_path / "data", settings=app_settings(tmp_path / "settings.ini"))
    w.confirm = lambda question: True
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


@pytest.fixture
def few_samples(monkeypatch):
    import mfv_desktop.ui.shell.imports as im

    monkeypatch.setattr(im, "SAMPLE_SCENES", 6)


def watch_samples(w) -> list[tuple[bool, str, str]]:
    """At every progress of a job: (the sample offer visible, the banner's text, the library's count)."""
    seen: list[tuple[bool, str, str]] = []
    w.jobs.progressed.connect(
        lambda job, p: seen.append((w.sample_button.isVisible(), w.banner_text.text(), w.library.count.text()))
    )
    return seen


def test_the_sample_offer_is_gone_while_the_samples_come_in_and_the_banner_counts_them(qtbot, window, few_samples):
    w = window
    seen = watch_samples(w)
    assert w.sample_button.isVisible()
    qtbot.mouseClick(w.sample_button, Qt.MouseButton.LeftButton)
    assert not w.sample_button.isVisible()  # at once: a second click cannot add them twice
    assert "sample scenes" in w.banner_text.text().lower() and w.banner.isVisible()
    (job,) = w.jobs.jobs
    qtbot.waitUntil(lambda: job.status == "done", timeout=60000)
    assert seen and not any(visible for visible, _, _ in seen)
    assert any("3/6" in text for _, text, _ in seen), seen
    qtbot.waitUntil(lambda: w.scene_id is not None, timeout=5000)
    assert repo.count_scenes(w.store) == 6 and not w.banner.isVisible()
    assert len(w.jobs.jobs) == 1


def test_the_first_start_samples_also_hide_the_offer(qtbot, window, few_samples):
    w = window
    job = w.add_samples_on_first_start()
    assert job is not None and not w.sample_button.isVisible()
    assert w.imports.add_sample_scenes() is job  # asking again while they come in gives the same job
    qtbot.waitUntil(lambda: job.status == "done", timeout=60000)


def test_the_library_shows_the_samples_coming_in(qtbot, window, few_samples):
    w = window
    seen = watch_samples(w)
    job = w.add_samples_on_first_start()
    qtbot.waitUntil(lambda: job.status == "done", timeout=60000)
    assert any("3/6" in count for _, _, count in seen), seen
    qtbot.waitUntil(lambda: w.library.count.text() == "6 scenes", timeout=5000)


@pytest.mark.parametrize("n", [1, 2])
def test_the_import_message_counts_images_in_good_english(qtbot, window, tmp_path, n):
    w = window
    paths = []
    for i in range(n):
        paths.append(str(tmp_path / f"p{i}.png"))
        Image.new("RGB", (120, 90), "white").save(paths[-1])
    job = w.import_paths(paths)
    qtbot.waitUntil(lambda: job.status == "done", timeout=20000)
    qtbot.waitUntil(lambda: "added" in w.status.currentMessage(), timeout=5000)
    expected = "1 image added" if n == 1 else f"{n} images added"
    assert w.status.currentMessage().startswith(expected), w.status.currentMessage()


def test_an_imported_scene_is_selected_and_shown(qtbot, window, tmp_path):
    w = window
    first = tmp_path / "first.png"
    Image.new("RGB", (200, 200), "white").save(first)
    job = w.import_paths([str(first)], dataset="earlier")
    qtbot.waitUntil(lambda: job.status == "done" and w.scene_id is not None, timeout=20000)
    earlier = w.scene_id
    w.library.set_filters(dataset="earlier")  # the filter hides what comes next: the import shows it anyway
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.new("RGB", (300, 100), "grey").save(folder / "a.png")
    Image.new("RGB", (100, 300), "grey").save(folder / "b.png")
    job = w.import_paths([str(folder)])
    qtbot.waitUntil(lambda: job.status == "done", timeout=20000)
    new = [s for s in repo.page_scenes(w.store, dataset="imported")]
    assert len(new) == 2
    qtbot.waitUntil(lambda: w.scene_id == new[0].id, timeout=5000)
    assert w.scene_id != earlier and w.library.current_scene_id() == new[0].id
    assert w.canvas.sceneRect().width() == pytest.approx(new[0].width)  # on the canvas
    w.grab().save(str(tmp_path / "imported.png"))


def new_drawing_button(w):
    bar = w.findChild(QToolBar, "toolbar.tools")
    return bar.widgetForAction(w.acts["file.new_drawing"])


@pytest.mark.parametrize("leave", ["another scene", "another tab", "quit"])
def test_an_empty_drawing_is_dropped_when_the_user_leaves_it(qtbot, tmp_path, leave):
    w = open_window(qtbot, tmp_path)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (200, 200), "white").save(photo)
    job = w.import_paths([str(photo)])
    qtbot.waitUntil(lambda: job.status == "done" and w.scene_id is not None, timeout=20000)
    photo_id = w.scene_id
    qtbot.mouseClick(new_drawing_button(w), Qt.MouseButton.LeftButton)  # by accident
    drawing = w.scene_id
    assert drawing != photo_id and repo.count_scenes(w.store) == 2
    if leave == "another scene":
        w.library.select_scene(photo_id)
        qtbot.waitUntil(lambda: w.scene_id == photo_id, timeout=5000)
    elif leave == "another tab":
        w.tabs.setCurrentIndex(w.tabs.count() - 1)
    else:
        w.close()
        w = open_window(qtbot, tmp_path)
    assert repo.count_scenes(w.store) == 1 and w.library.count.text() == "1 scene"
    assert all(s.id != drawing for s in repo.page_scenes(w.store))
    assert not w.undo.canUndo()  # nothing to undo brings it back
    w.close()


def test_an_accidental_drawing_on_the_first_start_keeps_the_sample_offer(qtbot, window):
    w = window
    assert w.sample_button.isVisible()
    qtbot.mouseClick(new_drawing_button(w), Qt.MouseButton.LeftButton)
    assert repo.count_scenes(w.store) == 1
    assert w.banner.isVisible() and w.sample_button.isVisible()  # an empty drawing does not count
    w.tabs.setCurrentIndex(1)  # leaving it drops it
    assert repo.count_scenes(w.store) == 0
    w.tabs.setCurrentIndex(0)
    assert w.banner.isVisible() and w.sample_button.isVisible()


def test_undo_does_not_bring_back_an_emptied_drawing(qtbot, window):
    w = window
    w.acts["file.new_drawing"].trigger()
    drawing = w.scene_id
    w.stamp_palette.choose("procedural:apple")
    qtbot.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, pos=w.canvas.mapFromScene(400, 300))
    assert len(repo.objects(w.store, drawing)) == 1
    w.undo.undo()  # the drawing is empty again
    assert repo.objects(w.store, drawing) == []
    w.tabs.setCurrentIndex(1)  # leave it: it is dropped
    assert repo.count_scenes(w.store) == 0
    w.undo.redo()  # the stamp's redo has nowhere to go: nothing happens, no error, no scene
    w.undo.undo()
    assert repo.count_scenes(w.store) == 0 and w.scene_id is None


def place(qtbot, w, stamp: str, x: int, y: int) -> None:
    w.stamp_palette.choose(stamp)
    qtbot.mouseClick(w.canvas.viewport(), Qt.MouseButton.LeftButton, pos=w.canvas.mapFromScene(x, y))


def test_one_undo_skips_the_edits_of_a_dropped_drawing(qtbot, window):
    from PySide6.QtTest import QTest

    w = window
    w.acts["file.new_drawing"].trigger()
    kept = w.scene_id
    place(qtbot, w, "procedural:apple", 400, 300)
    w.acts["file.new_drawing"].trigger()  # the first drawing has an apple: it stays
    junk = w.scene_id
    assert repo.count_scenes(w.store) == 2
    place(qtbot, w, "procedural:cup", 300, 300)
    (cup,) = repo.objects(w.store, junk)
    w.canvas.select_object(cup.id)
    w.canvas.setFocus()
    QTest.keyClick(w.canvas, Qt.Key.Key_Delete)  # empty again
    assert repo.objects(w.store, junk) == [] and w.undo.count() == 3
    w.library.select_scene(kept)  # leave it: dropped, its two edits with it
    qtbot.waitUntil(lambda: w.scene_id == kept, timeout=5000)
    assert repo.count_scenes(w.store) == 1
    w.acts["edit.undo"].trigger()  # one undo: the apple on the kept drawing goes
    assert repo.objects(w.store, kept) == [] and repo.count_scenes(w.store) == 1
    assert "undo: add apple" in w.status.currentMessage()


def test_an_empty_drawing_left_by_a_crash_is_dropped_at_the_next_start(qtbot, tmp_path):
    from mfv_desktop.store import open_store

    store = open_store(tmp_path / "data")
    repo.create_drawn_scene(store, "drawn")
    store.close()
    w = open_window(qtbot, tmp_path)
    assert repo.count_scenes(w.store) == 0 and w.sample_button.isVisible()
    w.close()
