"""A curation edit is one store transaction each way: a relabel that fails half-way changes nothing
(label, undo stack) and says why; one keystroke opens few database sessions."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager

import pytest
import sqlalchemy.exc
from PIL import Image

from mfv_desktop.scenes import Box
from mfv_desktop.store import labels as label_repo
from mfv_desktop.store import scenes as repo
from tests.ui.test_window import key, labels_of, open_window

pytestmark = pytest.mark.usefixtures("qapp")


def window_with_a_suggestion(qtbot, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (300, 300), "white").save(photo)
    w = open_window(qtbot, tmp_path)
    w.import_paths([str(photo)])
    qtbot.waitUntil(lambda: w.scene_id is not None, timeout=20000)
    repo.add_object(w.store, w.scene_id, "cup", Box(100, 120, 160, 180))
    repo.add_object(w.store, w.scene_id, "apple", Box(100, 20, 160, 80))
    w.show_scene(w.scene_id)
    key(qtbot, w, w.acts.shortcut("label.suggest"))
    w.relations.table.selectRow(0)
    return w


def count_sessions(monkeypatch, store) -> list[int]:
    opened = [0]
    session = store.session

    @contextmanager
    def counted():
        opened[0] += 1
        with session() as s:
            yield s

    monkeypatch.setattr(store, "session", counted)
    return opened


def test_relabel_with_a_key_is_one_write_and_few_sessions(qtbot, tmp_path, monkeypatch):
    w = window_with_a_suggestion(qtbot, tmp_path)
    pair = w.relations.current()
    opened = count_sessions(monkeypatch, w.store)
    writes = []
    set_label = label_repo._set_label
    monkeypatch.setattr(label_repo, "_set_label", lambda *a, **k: writes.append(a[2]) or set_label(*a, **k))
    key(qtbot, w, "4")  # relabel: "right"
    # before: 16 sessions for one relabel key (reads around two separate commits, the library's
    # filters read one by one); now one for the edit, one for the scene, a few for the library
    assert opened[0] <= 8, opened[0]
    assert (pair[0], "right", pair[2]) in labels_of(w) and pair not in labels_of(w)
    assert len(writes) == 2  # the old label goes, the new one comes: in one transaction
    w.close()


def test_a_relabel_that_fails_half_way_changes_nothing_and_says_why(qtbot, tmp_path, monkeypatch):
    w = window_with_a_suggestion(qtbot, tmp_path)
    pair = w.relations.current()
    before, undo_count = labels_of(w), w.undo.count()
    calls = []
    set_label = label_repo._set_label

    def locked_on_the_second_write(*a, **k):
        calls.append(a[2])
        if len(calls) == 2:
            locked = sqlite3.OperationalError("database is locked")
            raise sqlalchemy.exc.OperationalError("INSERT INTO labels", {}, locked)
        return set_label(*a, **k)

    monkeypatch.setattr(label_repo, "_set_label", locked_on_the_second_write)
    key(qtbot, w, "4")
    assert len(calls) == 2  # the old label was deleted in the session, then the second write failed
    assert labels_of(w) == before and pair in before  # rolled back: the label is still there
    assert w.undo.count() == undo_count  # nothing to undo
    assert "busy" in w.statusBar().currentMessage()  # the user hears why
    monkeypatch.setattr(label_repo, "_set_label", set_label)
    key(qtbot, w, "4")  # and trying again works
    assert (pair[0], "right", pair[2]) in labels_of(w) and w.undo.count() == undo_count + 1
    key(qtbot, w, "Ctrl+Z")
    assert labels_of(w) == before
    w.close()


def test_suggest_and_its_undo_are_one_transaction_each(qtbot, tmp_path, monkeypatch):
    w = window_with_a_suggestion(qtbot, tmp_path)
    calls = []
    for name in ("set_labels", "suggest_label_changes"):
        fn = getattr(repo, name)
        monkeypatch.setattr(repo, name, lambda *a, fn=fn, name=name, **k: calls.append(name) or fn(*a, **k))
    opened = count_sessions(monkeypatch, w.store)
    key(qtbot, w, "Ctrl+Z")
    assert calls == ["set_labels"] and opened[0] <= 8, opened[0]  # both suggestions go in one transaction
    assert labels_of(w) == {}
    key(qtbot, w, "Ctrl+Shift+Z")
    assert calls == ["set_labels", "suggest_label_changes"]
    assert set(labels_of(w).values()) == {"suggested"} and len(labels_of(w)) == 2
    w.close()
