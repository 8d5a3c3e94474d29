"""Single-key curation shortcuts act only where curation is on screen: with the keyboard focus on the
scene canvas, the relation list or the scene library. From a science tab they do nothing (issue 18:
a stray "4" on the Analogy tab relabelled a relation of the Scene tab's scene). Window-wide shortcuts
(undo, new drawing) work from every tab."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from mfv_desktop.progress import run_to_end
from mfv_desktop.store import scenes as repo

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def labelled(qtbot, window, abs_scenes):
    """The window with two generated scenes whose relations are suggestions, the first one shown."""
    run_to_end(
        repo.add_scenes(
            window.store, "s", abs_scenes[:2], origin="generated", label_source="geometry", label_status="suggested"
        )
    )
    window.ctx.scenesChanged.emit()
    window.curation.refresh_vocabulary()
    qtbot.waitUntil(lambda: window.scene_id is not None and bool(window.relations.labels), timeout=5000)
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=2000)
    return window


def all_labels(w) -> dict[tuple[int, str, str, str], str]:
    """Every label of the store, any status: {(scene id, subject, relation, object): status}."""
    out = {}
    for s in repo.page_scenes(w.store, limit=1000):
        for lb in repo.get_scene(w.store, s.id, statuses=("suggested", "confirmed", "rejected"))[1]:
            out[(s.id, lb.subject, lb.relation, lb.object)] = f"{lb.status}/{lb.source}"
    return out


def press(qtbot, keys: str) -> None:
    """A key as the user types it: to the widget that has the keyboard focus."""
    seq = QKeySequence(keys)[0]
    target = QApplication.focusWidget()
    assert target is not None
    QTest.keyClick(target, seq.key(), seq.keyboardModifiers())
    qtbot.wait(10)


def click_tab(qtbot, w, title: str) -> None:
    bar = w.tabs.tabBar()
    i = next(i for i in range(w.tabs.count()) if w.tabs.tabText(i) == title)
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton, pos=bar.tabRect(i).center())
    qtbot.waitUntil(lambda: w.tabs.currentIndex() == i, timeout=5000)


@pytest.mark.parametrize("tab", ["Analogy", "AIE"])
def test_curation_keys_do_nothing_on_a_science_tab(qtbot, labelled, tab):
    w = labelled
    # the user was labelling: focus in the relation list, a suggestion selected
    table = w.relations.table
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(table.item(0, 0)).center())
    assert table.hasFocus()
    before, undo_index = all_labels(w), w.undo.index()
    click_tab(qtbot, w, tab)
    panel = w.tabs.currentWidget()
    for keys in ("4", "Y", "X", "G", "1", "J"):
        press(qtbot, keys)
    assert all_labels(w) == before and w.undo.index() == undo_index
    # also with the focus inside the science panel
    panel.setFocus()
    focus = QApplication.focusWidget()
    assert focus is not None and (focus is panel or panel.isAncestorOf(focus))
    for keys in ("4", "Y", "X", "G"):
        press(qtbot, keys)
    assert all_labels(w) == before and w.undo.index() == undo_index


def test_curation_keys_act_from_the_relation_list_and_show_the_change(qtbot, labelled):
    w = labelled
    click_tab(qtbot, w, "Analogy")
    click_tab(qtbot, w, "Scene")
    table = w.relations.table
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(table.item(0, 0)).center())
    assert table.hasFocus()
    first = w.relations.current()
    assert first is not None
    sid = w.scene_id
    new = w.relations.vocabulary[3]
    assert new != first[1]
    press(qtbot, "4")
    labels = all_labels(w)
    assert labels[(sid, first[0], new, first[2])] == "confirmed/user" and (sid, *first) not in labels
    # visible where it happens: the relation list shows it and the status bar says it
    shown = {(lb.subject, lb.relation, lb.object): lb.status for lb in w.relations.labels}
    assert shown[(first[0], new, first[2])] == "confirmed"
    message = w.status.currentMessage()
    assert f"{first[0]} {new} {first[2]}" in message and first[1] in message
    second = w.relations.current()
    assert second is not None and second != (first[0], new, first[2])
    press(qtbot, "Y")
    assert all_labels(w)[(sid, *second)].startswith("confirmed")
    assert "confirmed" in w.status.currentMessage() and " ".join(second) in w.status.currentMessage()
    press(qtbot, "Ctrl+Z")
    assert all_labels(w)[(sid, *second)].startswith("suggested")
    press(qtbot, "Ctrl+Z")
    assert all_labels(w)[(sid, *first)].startswith("suggested")


def test_canvas_focus_labels_too_and_window_shortcuts_work_from_every_tab(qtbot, labelled):
    w = labelled
    w.canvas.setFocus()
    qtbot.waitUntil(w.canvas.hasFocus, timeout=2000)
    first = w.relations.current()
    press(qtbot, "Y")
    assert all_labels(w)[(w.scene_id, *first)].startswith("confirmed")
    assert w.undo.index() == 1
    click_tab(qtbot, w, "Analogy")
    press(qtbot, "Ctrl+Z")  # undo is window-wide
    assert w.undo.index() == 0 and all_labels(w)[(w.scene_id, *first)].startswith("suggested")
    n = repo.count_scenes(w.store)
    press(qtbot, "Ctrl+N")  # a new drawing, from any tab: the Scene tab shows it
    assert repo.count_scenes(w.store) == n + 1 and w.tabs.currentIndex() == 0


def test_curation_actions_are_bound_to_the_curation_widgets_and_menus_still_trigger(qtbot, labelled):
    from mfv_desktop.ui.shell.actions import SPECS

    w = labelled
    curation = [s.id for s in SPECS if s.is_curation]
    assert {"label.confirm", "label.reject", "label.suggest", "label.relation.4", "edit.delete"} <= set(curation)
    assert not {"edit.undo", "file.new_drawing", "file.quit"} & set(curation)
    for action_id in curation:
        a = w.acts[action_id]
        assert a.shortcutContext() == Qt.ShortcutContext.WidgetWithChildrenShortcut
        assert w not in a.associatedObjects()  # not window-wide
        assert w.relations in a.associatedObjects() and w.library in a.associatedObjects()
    # a menu entry works whatever has the focus
    click_tab(qtbot, w, "Scene")
    first = w.relations.current()
    menu = next(m for m in w.menuBar().actions() if m.text() == "&Relations").menu()
    entry = next(a for a in menu.actions() if a.objectName() == "label.confirm")
    entry.trigger()
    assert all_labels(w)[(w.scene_id, *first)].startswith("confirmed")
