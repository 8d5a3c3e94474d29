"""Start-up with a store that does not open: the app explains it in a dialog with what the user can do
(open read-only, choose another folder, restore a backup, try again, quit) and never ends with a
traceback or in silence. Also: the first-start sample flag and a damaged AIE artifact in the AIE tab."""

from __future__ import annotations

import sqlite3

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from mfv_desktop.store import open_store
from mfv_desktop.store import scenes as repo
from mfv_desktop.store.db import _Lock, backup
from mfv_desktop.ui.shell import startup
from mfv_desktop.ui.shell.settings import app_settings

pytestmark = pytest.mark.usefixtures("qapp")


def _store_with_a_data_set(folder):
    with open_store(folder) as st, st.session() as s:
        repo.dataset_id(s, "kept")
    return folder / "store.sqlite"


class Asked:
    """A user who answers the dialog from a list, remembering what they were told."""

    def __init__(self, *answers):
        self.answers, self.seen = list(answers), []

    def __call__(self, error, folder, backups):
        self.seen.append((str(error), folder, list(backups)))
        return self.answers.pop(0)


def _names(store):
    return [d["name"] for d in repo.datasets(store)]


def test_a_store_from_a_newer_version_asks_and_another_folder_opens(tmp_path):
    db = _store_with_a_data_set(tmp_path / "data")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
    settings = app_settings(tmp_path / "settings.ini")
    ask = Asked(("other", str(tmp_path / "elsewhere")))
    store, reason = startup.open_or_ask(tmp_path / "data", settings, ask)
    try:
        assert "newer mfv_desktop" in ask.seen[0][0] and ask.seen[0][1] == tmp_path / "data"
        assert store.data_dir.resolve() == (tmp_path / "elsewhere").resolve() and not store.read_only
        assert settings.value("data_dir") == str(tmp_path / "elsewhere")  # the next start goes there too
    finally:
        store.close()
    with sqlite3.connect(db) as con:  # the newer store is untouched
        assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("9999",)


def test_a_damaged_database_is_restored_from_a_backup_the_user_picks(tmp_path):
    db = _store_with_a_data_set(tmp_path / "data")
    kept = backup(db, "manual")
    with open(db, "r+b") as f:  # the header is gone
        f.write(b"\0" * 100)
    ask = Asked(("restore", str(kept)))
    store, _ = startup.open_or_ask(tmp_path / "data", app_settings(tmp_path / "s.ini"), ask)
    try:
        assert [b.path for b in ask.seen[0][2]] == [kept]
        assert _names(store) == ["kept"] and store.integrity_check() == "ok"
    finally:
        store.close()
    assert list((tmp_path / "data").glob("store.sqlite.broken-*")), "the damaged file is kept aside"


def test_two_first_starts_at_once_ask_instead_of_crashing_and_quit_returns_nothing(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    other = _Lock(folder / "store.lock")  # the other app holds the lock before the database exists
    other.acquire()
    try:
        ask = Asked(("retry", None), ("quit", None))
        assert startup.open_or_ask(folder, app_settings(tmp_path / "s.ini"), ask) is None
        assert len(ask.seen) == 2 and "in use by another mfv_desktop process" in ask.seen[0][0]
    finally:
        other.release()
    ask = Asked()
    store, reason = startup.open_or_ask(folder, app_settings(tmp_path / "s.ini"), ask)  # now it opens
    store.close()
    assert not ask.seen and reason == ""


def test_the_dialog_shows_the_message_and_offers_what_fits(qtbot, tmp_path, monkeypatch):
    db = _store_with_a_data_set(tmp_path / "data")
    kept = backup(db, "manual")
    from mfv_desktop.store.db import usable_backups

    shown = {}

    def answer():
        box = QApplication.activeModalWidget()
        assert isinstance(box, QMessageBox)
        shown["text"] = box.informativeText()
        shown["buttons"] = sorted(b.text() for b in box.buttons())
        next(b for b in box.buttons() if b.text() == "Choose another folder…").click()

    QTimer.singleShot(200, answer)
    monkeypatch.setattr(startup.QFileDialog, "getExistingDirectory", lambda *a: str(tmp_path / "other"))
    got = startup.ask_user(
        startup.StoreError("the store is damaged (test)"), tmp_path / "data", usable_backups(tmp_path / "data")
    )
    assert got == ("other", str(tmp_path / "other"))
    assert shown["text"] == "the store is damaged (test)"
    assert shown["buttons"] == sorted(startup.CHOICES.values())  # a database and a backup: every choice
    assert kept.exists()


def test_quitting_at_the_dialog_ends_the_app_with_a_message(tmp_path, monkeypatch, capsys):
    from mfv_desktop.ui import app

    db = _store_with_a_data_set(tmp_path / "data")
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
    told = []
    monkeypatch.setattr(startup, "ask_user", lambda error, folder, backups: told.append(str(error)) or ("quit", None))
    rc = app.main(["--data-dir", str(tmp_path / "data"), "--settings", str(tmp_path / "s.ini"), "--no-samples"])
    assert rc == 1 and "newer mfv_desktop" in told[0]
    assert "the store did not open" in capsys.readouterr().err


def test_the_sample_flag_is_set_only_when_the_samples_are_in(qtbot, window, monkeypatch):
    import mfv_desktop.ui.shell.imports as mw
    from mfv_desktop import jobs

    monkeypatch.setattr(mw, "SAMPLE_SCENES", 4)

    def broken(spec, *a, **kw):
        raise OSError(28, "No space left on device")
        yield  # a generator, like the real job

    monkeypatch.setitem(jobs.JOBS, "generate", (jobs.GenerateSpec, broken))
    job = window.add_samples_on_first_start()
    qtbot.waitUntil(lambda: job.status == "failed", timeout=30000)
    assert not window.settings.value("first_start/samples_added", False, type=bool)
    monkeypatch.undo()
    monkeypatch.setattr(mw, "SAMPLE_SCENES", 4)
    job = window.add_samples_on_first_start()  # the next start tries again
    assert job is not None
    qtbot.waitUntil(lambda: job.status == "done", timeout=60000)
    qtbot.waitUntil(lambda: window.settings.value("first_start/samples_added", False, type=bool), timeout=5000)
    assert repo.count_scenes(window.store, "sample") == 4


def test_a_damaged_aie_artifact_is_named_in_the_aie_tab(qtbot, window):
    from mfv_desktop.jobs import AIESpec, GenerateSpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.progress import run_to_end
    from mfv_desktop.store import models as m

    run_to_end(
        run_in_store(window.store, GenerateSpec(n_scenes=12, seed=5, split="sample", canvas=256), dataset="sample")
    )
    run_id, _ = run_to_end(
        run_in_store(window.store, AIESpec(scenes="dataset:sample", relations=("above",), n_prompts=4))
    )
    with window.store.session() as s:
        digest = s.query(m.AIEResultRow).filter_by(run_id=run_id).one().aie_artifact
    path = window.store.artifacts.path(digest)
    path.write_bytes(path.read_bytes()[:-7] + b"damaged")
    panel = window.show_tab("aie")
    panel.refresh()
    panel.show_run(run_id)
    assert f"run {run_id} cannot be shown" in panel.status.text() and str(path) in panel.status.text()
    assert str(path) in window.statusBar().currentMessage()


def test_a_store_on_read_only_media_opens_read_only_when_the_user_chooses_it(tmp_path, monkeypatch):
    from tests.store.test_reliability_store import _read_only_folder

    folder = tmp_path / "data"
    _store_with_a_data_set(folder)
    _read_only_folder(monkeypatch, folder)
    try:
        ask = Asked(("read_only", None))
        store, reason = startup.open_or_ask(folder, app_settings(tmp_path / "s.ini"), ask)
        try:
            assert "read-only" in ask.seen[0][0] and "backup" not in ask.seen[0][0]
            assert store.read_only and "Read-only" in reason and _names(store) == ["kept"]
        finally:
            store.close()
    finally:
        folder.chmod(0o755)
