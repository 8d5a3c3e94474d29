"""Naming an object after its box is drawn: Return is OK (the completer does not swallow it), the
single-token check is never cut off, the words the model knows are listed and searchable, and the
dialog stands beside the box it names, not over it."""

from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QRect, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog  # noqa: E402

from mfv_desktop.store import scenes as repo  # noqa: E402
from mfv_desktop.ui.shell.dialogs import NameDialog  # noqa: E402

pytestmark = pytest.mark.usefixtures("qapp")

#: words the bundled model knows as one token (its tokenizer.json), and names it does not
KNOWN = ["ball", "book", "boat", "bottle", "balloon", "ballbook"]


def opened(qtbot, dialog: QDialog) -> QDialog:
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitExposed(dialog)
    return dialog


def test_return_with_the_completer_open_accepts_the_text_as_typed(qtbot):
    d = opened(qtbot, NameDialog(KNOWN, "bundled"))
    qtbot.keyClicks(d.edit, "ball")
    popup = d.edit.completer().popup()
    qtbot.waitUntil(popup.isVisible, timeout=2000)  # "balloon", "ballbook" offered
    # the open popup has the keyboard: Return goes to it, as under a real display
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    assert d.result() == QDialog.DialogCode.Accepted and d.edit.text().strip() == "ball"


def test_return_on_a_highlighted_completion_accepts_that_completion(qtbot):
    d = opened(qtbot, NameDialog(KNOWN, "bundled"))
    qtbot.keyClicks(d.edit, "bot")
    popup = d.edit.completer().popup()
    qtbot.waitUntil(popup.isVisible, timeout=2000)
    qtbot.keyClick(popup, Qt.Key.Key_Down)  # the user moves into the popup
    qtbot.keyClick(popup, Qt.Key.Key_Return)
    assert d.result() == QDialog.DialogCode.Accepted and d.edit.text().strip() == "bottle"


@pytest.mark.parametrize("typed", ["xylophonezzz", "ball-book-boat"])
def test_the_check_message_is_never_cut_off(qtbot, typed):
    d = opened(qtbot, NameDialog(KNOWN, "bundled"))
    qtbot.keyClicks(d.edit, typed)
    qtbot.wait(50)  # the layout settles
    label = d.check
    assert label.wordWrap() and label.isVisible()
    assert "vocabulary" in label.text() or "tokens" in label.text()
    # the whole text fits: wide enough for its longest word, tall enough for its wrapped lines, inside the dialog
    assert label.width() >= label.minimumSizeHint().width()
    assert label.height() >= label.heightForWidth(label.width())
    assert d.rect().contains(QRect(label.mapTo(d, QPoint(0, 0)), label.size()))


def test_the_words_the_model_knows_are_listed_searchable_and_fill_the_name(qtbot):
    from mfv_desktop.ui.curation.naming import single_token_words

    words = single_token_words("bundled")
    assert {"ball", "book", "cup", "tree"} <= set(words) and "<unk>" not in words and "." not in words
    d = opened(qtbot, NameDialog(KNOWN, "bundled"))
    vocab = d.vocabulary
    assert vocab.shown() == words
    qtbot.keyClicks(vocab.filter, "bo")
    assert vocab.shown() == sorted(w for w in words if "bo" in w)  # boat, book, bottle
    rect = vocab.list.visualRect(vocab.index_of("book"))
    qtbot.mouseClick(
        vocab.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center()
    )  # a double-click's first press
    qtbot.mouseDClick(vocab.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert d.edit.text() == "book" and "one token" in d.check.text()
    vocab.filter.clear()
    qtbot.keyClicks(vocab.filter, "tre")
    qtbot.keyClick(vocab.filter, Qt.Key.Key_Return)  # Enter in the search field: into the list, not OK
    assert d.isVisible() and vocab.list.currentIndex().data() == "tree"
    qtbot.keyClick(vocab.list, Qt.Key.Key_Return)  # Enter on a word fills the name, it does not close
    assert d.edit.text() == "tree" and d.isVisible()


def test_the_dialog_stands_beside_the_box_it_names(qtbot):
    screen = QApplication.primaryScreen().availableGeometry()
    for box in (
        QRect(screen.left() + 40, screen.top() + 60, 120, 90),  # room on the right
        QRect(screen.right() - 160, screen.top() + 200, 120, 90),  # room on the left only
    ):
        d = NameDialog(KNOWN, "bundled", near=box)
        opened(qtbot, d)
        assert not d.frameGeometry().intersects(box)
        assert screen.contains(d.frameGeometry())
        d.reject()


def _photo(tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (300, 300), "white").save(photo)
    return photo


def test_drawing_a_box_asks_its_name_beside_it_and_return_names_it(qtbot, tmp_path):
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings
    from tests.ui.test_window import drag, key

    w = MainWindow(data_dir=tmp_path / "data", settings=app_settings(tmp_path / "settings.ini"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    w.import_paths([str(_photo(tmp_path))])
    qtbot.waitUntil(lambda: w.scene_id is not None, timeout=20000)
    key(qtbot, w, w.acts.shortcut("edit.new_box"))
    seen: dict = {}

    def answer() -> None:  # the modal dialog, as the user sees it
        d = QApplication.activeModalWidget()
        if not isinstance(d, NameDialog):
            return QTimer.singleShot(20, answer)
        seen["dialog"] = d.frameGeometry()
        seen["box in view"] = w.canvas.rubber is not None and w.canvas.rubber.isVisible()
        qtbot.keyClicks(d.edit, "ball")
        popup = d.edit.completer().popup()
        if popup.isVisible():
            qtbot.keyClick(popup, Qt.Key.Key_Return)
        else:
            qtbot.keyClick(d.edit, Qt.Key.Key_Return)
        if d.isVisible():  # Return did not close it: the test fails below, the dialog must not hang
            seen["still open"] = d.edit.text()
            d.reject()

    real, w.ask_name = w.ask_name, lambda known, current: "balloon"
    drag(qtbot, w.canvas, (10, 10), (60, 60))  # a first object: the completer offers "balloon" for "ball"
    w.ask_name = real
    QTimer.singleShot(0, answer)
    a, b = (110, 110), (190, 190)
    drag(qtbot, w.canvas, a, b)
    box = QRect(
        w.canvas.viewport().mapToGlobal(w.canvas.mapFromScene(*a)),
        w.canvas.viewport().mapToGlobal(w.canvas.mapFromScene(*b)),
    )
    assert "still open" not in seen
    assert seen["box in view"]  # the box being named is drawn while its name is asked
    assert not seen["dialog"].intersects(box)
    assert "ball" in [o.name for o in repo.objects(w.store, w.scene_id)]


def test_the_scene_menu_lists_the_words_the_model_knows(qtbot, tmp_path):
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    w = MainWindow(data_dir=tmp_path / "data", settings=app_settings(tmp_path / "settings.ini"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    action = w.acts["scene.vocabulary"]
    scene_menu = next(m.menu() for m in w.menuBar().actions() if m.text().replace("&", "") == "Scene")
    assert action in scene_menu.actions()
    action.trigger()
    d = w.vocabulary_dialog
    qtbot.waitExposed(d)
    assert "bundled" in d.windowTitle() or "bundled" in d.header.text()
    qtbot.keyClicks(d.vocabulary.filter, "cu")
    assert d.vocabulary.shown() == ["cup"]
