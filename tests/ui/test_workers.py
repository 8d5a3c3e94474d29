"""Jobs in the desktop app run as generators in superqt workers (ui/shell/workers.py), without a model:
cancelling closes the job at its yield in the worker thread before the job is reported cancelled,
closing the window marks a running run cancelled before the window is gone, any exception fails the
job with its traceback, and slots run on the GUI thread."""

from __future__ import annotations

import threading
import time

import pytest

from mfv_desktop.progress import Progress
from mfv_desktop.store import models as m

pytestmark = pytest.mark.usefixtures("qapp")


def _endless(log: list):
    """A job (spec -> generator) that yields until it is closed, noting where and how it ended."""

    def job(spec, *a, **kw):
        i = 0
        try:
            while True:
                time.sleep(0.02)
                i += 1
                yield Progress(i, 10**6, f"step {i}")
        except GeneratorExit:
            log.append(("closed", threading.current_thread() is threading.main_thread()))
            raise

    return job


def test_cancelling_closes_the_job_at_its_yield_before_it_is_reported(qtbot, window):
    ended: list = []
    heard: list = []

    def work():
        try:
            for i in range(10**6):
                time.sleep(0.01)
                yield Progress(i, 10**6, "working")
        finally:
            ended.append(threading.current_thread() is threading.main_thread())

    job = window.jobs.submit(work, "endless", on_progress=lambda p: heard.append(threading.current_thread()))
    qtbot.waitUntil(lambda: len(heard) >= 3, timeout=10000)
    window.jobs.cancel(job)
    qtbot.waitUntil(lambda: job.status == "cancelled", timeout=10000)
    assert ended == [False]  # closed once, in the worker thread, by the time the queue heard of it
    assert all(t is threading.main_thread() for t in heard)  # progress is drawn on the GUI thread
    qtbot.waitUntil(lambda: not job.worker.is_running, timeout=5000)


def test_closing_the_window_marks_the_running_run_cancelled_at_once(qtbot, window, monkeypatch):
    from mfv_desktop import jobs

    log: list = []
    monkeypatch.setitem(jobs.JOBS, "generate", (jobs.GenerateSpec, _endless(log)))
    job = window.submit_spec(jobs.GenerateSpec(n_scenes=4), "generate", dataset="x")
    qtbot.waitUntil(lambda: job.progress is not None and job.progress.done >= 2, timeout=20000)
    assert job.run_id is not None  # listed as its run from its first yield
    store = window.store
    with store.session() as s:
        assert s.get(m.Run, job.run_id).status == "running"
    run_id, folder = job.run_id, store.runs_dir / str(job.run_id)
    window.close()  # no event loop turns after this: the job was closed while the window closed
    assert log == [("closed", False)]
    from mfv_desktop.store import open_store

    with open_store(store.data_dir, read_only=True) as st, st.session() as s:
        run = s.get(m.Run, run_id)
        assert run.status == "cancelled" and run.message == "cancelled" and run.done >= 1
    import json

    assert json.loads((folder / "run.json").read_text())["status"] == "cancelled"


def test_any_exception_of_a_job_fails_it_with_its_traceback(qtbot, window):
    failed: list = []

    def work():
        yield Progress(0, 1, "about to fail")
        raise RuntimeError("CUDA out of memory (a RuntimeError, as torch raises)")

    job = window.jobs.submit(work, "doomed", on_failed=failed.append)
    qtbot.waitUntil(lambda: job.status == "failed", timeout=10000)
    assert failed == ["CUDA out of memory (a RuntimeError, as torch raises)"]
    assert "Traceback (most recent call last)" in job.traceback and "in work" in job.traceback


def test_a_cancel_that_comes_after_the_last_step_keeps_the_result(qtbot, window):
    done: list = []
    box: list = []
    queued = threading.Event()

    def work():
        yield Progress(0, 1, "last step")
        queued.wait(5)
        window.jobs.cancel(box[0])  # the user clicks Cancel as the job returns
        return 42

    box.append(window.jobs.submit(work, "quick", on_done=done.append))
    queued.set()
    job = box[0]
    qtbot.waitUntil(lambda: job.status != "running" and job.status != "queued", timeout=10000)
    assert job.status == "done" and done == [42]


def test_plain_functions_and_a_queue_of_jobs_run_one_after_another(qtbot, window):
    order: list = []

    def step(name):
        def work():
            order.append((name, "start"))
            yield Progress(0, 1, name)
            time.sleep(0.05)
            order.append((name, "end"))
            return name

        return work

    a = window.jobs.submit(step("a"), "a")
    b = window.jobs.submit(step("b"), "b")
    c = window.jobs.submit(lambda: 7, "plain")  # a plain function: runs to its end
    qtbot.waitUntil(lambda: all(j.status == "done" for j in (a, b, c)), timeout=10000)
    assert order == [("a", "start"), ("a", "end"), ("b", "start"), ("b", "end")]
    assert (a.result, b.result, c.result) == ("a", "b", 7)
