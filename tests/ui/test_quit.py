"""Quitting while a job runs: the job is cancelled and its run recorded "cancelled", the store is
closed, and the window goes at once when the job stops at its next step; when its step is long (a
model loading, a forward pass) the status bar says "stopping job…" at once and the window goes when
the job has stopped. The app itself, quit by the quit action (here through SIGTERM, which triggers
it) while its first job runs, exits with 0 and no fatal error."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mfv_desktop.progress import Progress
from mfv_desktop.store import models as m
from mfv_desktop.store import open_store

pytestmark = pytest.mark.usefixtures("qapp")

#: a close while a job runs returns within this (the job is asked to stop and waited for a moment)
CLOSE_BOUND_S = 1.0


def _steps(step_s: float):
    """A job (spec -> generator) whose steps take `step_s` each and cannot be cut short (like a model
    loading): it stops at its next yield."""

    def job(spec, *a, **kw):
        for i in range(10**6):
            yield Progress(i, 10**6, f"step {i}")
            time.sleep(step_s)

    return job


def _status(data_dir: Path, run_id: int) -> str:
    with open_store(data_dir, read_only=True) as st, st.session() as s:
        return s.get(m.Run, run_id).status


def _start(qtbot, window, monkeypatch, step_s: float):
    from mfv_desktop import jobs

    monkeypatch.setitem(jobs.JOBS, "generate", (jobs.GenerateSpec, _steps(step_s)))
    job = window.submit_spec(jobs.GenerateSpec(n_scenes=4), "generate", dataset="x")
    qtbot.waitUntil(lambda: job.run_id is not None and job.progress is not None, timeout=20000)
    closed: list = []
    store_close = window.store.close
    monkeypatch.setattr(window.store, "close", lambda: (closed.append(True), store_close()))
    return job, closed


def test_quit_while_a_job_runs_cancels_it_closes_the_store_and_is_quick(qtbot, window, monkeypatch):
    job, closed = _start(qtbot, window, monkeypatch, 0.05)
    data_dir = window.store.data_dir
    t0 = time.perf_counter()
    window.acts["file.quit"].trigger()
    took = time.perf_counter() - t0
    assert took < CLOSE_BOUND_S, f"quit took {took:.2f} s"
    assert not window.isVisible() and closed == [True]
    assert job.status == "cancelled" and _status(data_dir, job.run_id) == "cancelled"


def test_quit_during_a_long_step_says_stopping_and_goes_when_the_job_stopped(qtbot, window, monkeypatch):
    job, closed = _start(qtbot, window, monkeypatch, 2.5)
    data_dir = window.store.data_dir
    t0 = time.perf_counter()
    window.acts["file.quit"].trigger()
    took = time.perf_counter() - t0
    assert took < CLOSE_BOUND_S, f"quit blocked the window for {took:.2f} s"
    # the job is still in its step: the window says so, and stays until the job has stopped
    assert window.isVisible() and closed == []
    assert "stopping" in window.status.job_label.text() and window.status.job_label.isVisible()
    assert not window.status.job_cancel.isVisible()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=15000)
    assert closed == [True] and job.status == "cancelled"
    assert _status(data_dir, job.run_id) == "cancelled"
    assert time.perf_counter() - t0 < 2.5 + 3.0


def _running_run(db: Path) -> int | None:
    if not db.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            row = c.execute("select id from runs where status = 'running'").fetchone()
            return row[0] if row else None
    except sqlite3.Error:
        return None


@pytest.mark.timeout(120)
def test_the_app_quit_while_its_first_job_runs_exits_cleanly(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "MFV_LOG_DIR": str(tmp_path / "logs")}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")])
    args = [sys.executable, "-m", "mfv_desktop.ui.app", "--data-dir", str(data), "--settings", str(tmp_path / "s.ini")]
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60  # the first start adds the sample scenes: a job
        run_id = None
        while run_id is None and time.time() < deadline and p.poll() is None:
            time.sleep(0.1)
            run_id = _running_run(data / "store.sqlite")
        assert run_id is not None, "the sample scenes' job never ran"
        t0 = time.perf_counter()
        p.send_signal(signal.SIGTERM)  # the quit action, as the window's menu or Ctrl+Q triggers it
        out, err = p.communicate(timeout=30)
        took = time.perf_counter() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert "Fatal Python error" not in err, err
    assert p.returncode == 0, err
    assert _status(data, run_id) == "cancelled"
    print(f"the app quit {took:.2f} s after the signal")


def test_the_windows_a_user_opened_close_with_the_main_window(qtbot, window):
    window.imports.ask_import_gqa()
    dialog = window.imports.gqa_dialog
    assert dialog is not None and dialog.isVisible()
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible())
    assert not dialog.isVisible()
