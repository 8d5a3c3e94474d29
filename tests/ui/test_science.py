"""The science tabs and the jobs panel, driven like a user with the bundled model: run AIE and watch
the heatmaps fill in while the window stays responsive, build a vector from clicked heads, sweep its
layer, cancel a job, and resume a run whose process was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt, QTimer
from sqlalchemy import select

from mfv_desktop.progress import Progress
from mfv_desktop.store import models as m

pytestmark = pytest.mark.usefixtures("qapp")


def _add_scenes(store, n=40, dataset="sample"):
    from mfv_desktop.jobs import GenerateSpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.progress import run_to_end

    run_to_end(run_in_store(store, GenerateSpec(n_scenes=n, seed=5, split="sample", canvas=256), dataset=dataset))


def _last_status(store, kind):
    runs = _runs(store, kind)
    return runs[-1].status if runs else None


def _runs(store, kind=None):
    with store.session() as s:
        q = select(m.Run).order_by(m.Run.id)
        return [r for r in s.scalars(q) if kind is None or r.kind == kind]


def test_aie_from_the_gui_fills_the_heatmaps_while_the_window_keeps_turning(qtbot, window, monkeypatch):
    from mfv_desktop.backends import loading

    loads = []
    monkeypatch.setattr(loading, "_LOADED", {})  # a model loads once per model, device and dtype, for every job
    from mfv_desktop.backends.openflamingo import OpenFlamingoBackend

    real = OpenFlamingoBackend.from_folder
    monkeypatch.setattr(OpenFlamingoBackend, "from_folder", lambda *a, **k: loads.append(a) or real(*a, **k))
    _add_scenes(window.store)
    panel = window.show_tab("aie")  # the tab reloads the store's data sets
    assert panel.dataset.currentData() == "sample"
    panel.n_prompts.setValue(24)
    for rel in ("left", "right"):
        panel.relation_boxes[rel].setChecked(False)
    seen: list[tuple[str, int]] = []
    window.jobs.progressed.connect(
        lambda job, p: seen.append((p.partial.get("relation"), int(p.partial.get("n_prompts", 0))))
    )
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(20)
    t0 = time.perf_counter()
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert set(panel.maps) == {"above", "below"}  # empty maps wait for the results
    qtbot.waitUntil(lambda: _last_status(window.store, "aie") == "done", timeout=120000)
    elapsed = time.perf_counter() - t0
    timer.stop()
    # the event loop kept turning: no gap between timer ticks longer than half a second
    gaps = np.diff([t0, *ticks])
    assert len(ticks) > elapsed / 0.1 and gaps.max() < 0.5, (len(ticks), elapsed, gaps.max())
    # the maps were drawn from partial results before the job ended: several prompt counts per relation
    partial = sorted({n for rel, n in seen if rel == "above" and n})
    assert len(partial) >= 2 and partial[-1] == 24, partial
    qtbot.waitUntil(lambda: panel.shown_run is not None)
    run_id = _runs(window.store, "aie")[-1].id
    assert panel.shown_run == run_id and "24 prompts" in panel.maps["above"].plot.titleLabel.text
    stored = panel.load_aie(run_id)
    np.testing.assert_allclose(panel.maps["above"].aie, stored["above"][0])

    # click the best head of 'above' on its map, add the next by clicking, build a vector of the two
    mp = panel.maps["above"]
    first, second = mp.top_heads()[:2]
    for layer, head in (first, second):
        pos = mp.view.mapFromScene(mp.plot.vb.mapViewToScene(QPointF(head, layer)))
        qtbot.mouseClick(mp.view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert mp.selected == [first, second] and "above: 2 heads" in panel.selection.text()
    assert panel.layer.maximum() == 5  # the bundled model's last layer
    panel.layer.setValue(2)
    panel.strength.setValue(2.0)
    with qtbot.waitSignal(window.vectorsChanged, timeout=60000):
        qtbot.mouseClick(panel.build_button, Qt.MouseButton.LeftButton)
    with window.store.session() as s:
        v = s.scalars(select(m.VectorRow)).one()
        assert v.relation == "above" and [tuple(h) for h in v.heads] == [first, second]
        assert (v.layer, v.strength) == (2, 2.0)
    # built from the run's AIE result in the store (hash-checked), into the store: no run folder
    extract = _runs(window.store, "extract")[-1]
    assert extract.spec["aie"].startswith("aie:") and not (window.store.runs_dir / str(extract.id)).exists()

    # the layer sweep of that vector: a curve over the layers and the baselines as lines
    sweep = window.show_tab("sweep")
    assert sweep.vector.currentData() == v.id
    sweep.strengths.setText("1, 4")
    sweep.n_prompts.setValue(16)
    qtbot.mouseClick(sweep.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sweep.shown is not None and "baselines" in sweep.shown, timeout=120000)
    shown = sweep.shown
    assert shown["layers"] == list(range(6)) and len(shown["accuracy"]) == 2
    assert set(shown["baselines"]) == {"0-shot", "4-shot ICL"}
    lines = [i for i in sweep.plot.getPlotItem().items if type(i).__name__ == "InfiniteLine"]
    assert sorted(round(line.value(), 6) for line in lines) == sorted(round(v, 6) for v in shown["baselines"].values())

    # evaluate it, and fine-tune it into a new vector
    qtbot.mouseClick(sweep.evaluate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sweep.report.text().startswith("accuracy"), timeout=120000)
    assert "0-shot" in sweep.report.text() and "4-shot ICL" in sweep.report.text() and "FV" in sweep.report.text()
    qtbot.mouseClick(sweep.finetune_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: sweep.report.text().startswith("fine-tuned vector saved"), timeout=240000)
    with window.store.session() as s:
        kinds = sorted(v.kind for v in s.scalars(select(m.VectorRow)))
    assert kinds == ["extracted", "finetuned"]
    assert len(loads) == 1  # AIE, the vector, the sweep, evaluation and fine-tuning shared one loaded model


def test_the_aie_tab_averages_over_matched_prompts_unless_told_and_says_which(qtbot, window):
    _add_scenes(window.store, n=16)
    panel = window.show_tab("aie")
    assert panel.matched_only.isChecked() and "authors'" in panel.matched_only.toolTip()
    panel.n_prompts.setValue(4)
    for rel in ("below", "left", "right"):
        panel.relation_boxes[rel].setChecked(False)
    for matched in (True, False):
        panel.matched_only.setChecked(matched)
        assert panel.spec().matched_only is matched
        n_runs = len(_runs(window.store, "aie"))
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(
            lambda n_runs=n_runs: (
                len(_runs(window.store, "aie")) > n_runs and _last_status(window.store, "aie") == "done"
            ),
            timeout=120000,
        )
        qtbot.waitUntil(lambda: panel.shown_run == _runs(window.store, "aie")[-1].id)
    texts = [panel.results.itemText(i) for i in range(panel.results.count())]
    assert "all corrupted · 4 prompts" in texts[0]  # newest first
    assert "matched-only · " in texts[1] and " of 4 prompts" in texts[1]
    assert "above: " in panel.results.itemData(1, Qt.ItemDataRole.ToolTipRole)


def test_two_runs_side_by_side_share_one_colour_range(qtbot, window, bundled_vectors):
    from mfv_desktop.jobs import AIESpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.progress import run_to_end

    _add_scenes(window.store, n=24)
    ids = [
        run_to_end(run_in_store(window.store, AIESpec(scenes="dataset:sample", relations=("above",), n_prompts=n)))[0]
        for n in (8, 16)
    ]
    panel = window.aie_panel
    panel.refresh()
    panel.compare.setCurrentIndex(panel.compare.findData(ids[0]))
    panel.show_run(ids[1])
    left, right = panel.maps["above"], panel.other_maps["above"]
    both = np.concatenate([left.aie.ravel(), right.aie.ravel()])
    assert tuple(left.bar.levels()) == pytest.approx(tuple(right.bar.levels()))
    assert right.bar.levels()[1] == pytest.approx(both.max())
    assert not left.bar.isVisible() and right.bar.isVisible()


def test_cancel_a_running_job_from_the_jobs_panel(qtbot, window):
    from mfv_desktop.jobs import AIESpec

    _add_scenes(window.store)
    job = window.submit_spec(AIESpec(scenes="dataset:sample", n_prompts=200, method="reference"), "AIE")
    qtbot.waitUntil(lambda: job.progress is not None and job.progress.done > 0, timeout=60000)
    panel = window.jobs_panel
    panel.select_run(job.run_id)
    assert panel.cancel_button.isEnabled() and "AIE" in panel.log.toPlainText()
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: job.status == "cancelled", timeout=60000)
    assert _runs(window.store, "aie")[-1].status == "cancelled"
    panel.select_run(job.run_id)
    assert panel.resume_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.table.item(0, 2).text() == "cancelled"


def test_a_failed_job_shows_its_traceback(qtbot, window):
    from mfv_desktop.jobs import ExtractSpec

    job = window.submit_spec(ExtractSpec(aie=str(window.store.data_dir / "nowhere"), relation="above"), "vector")
    qtbot.waitUntil(lambda: job.status == "failed", timeout=60000)
    assert "run `mfv aie` first" in window.statusBar().currentMessage()
    window.jobs_panel.select_run(job.run_id)
    log = window.jobs_panel.log.toPlainText()
    assert log.startswith("Error: no AIE results") and "Traceback (most recent call last)" in log
    assert "run_extract" in log  # the frame where it failed


def test_resume_a_run_whose_process_was_killed(qtbot, tmp_path):
    """`mfv --store` is killed mid-AIE; the app marks the run interrupted, and Resume finishes it from
    where it stopped (finished relations are not measured again)."""
    from mfv_desktop.store import open_store

    data, N = tmp_path / "data", 4
    store = open_store(data)
    _add_scenes(store)
    store.close()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mfv_desktop.cli",
            "-q",
            "--store",
            str(data),
            "aie",
            "--scenes",
            "dataset:sample",
            "--n-prompts",
            str(N),
            "--method",
            "reference",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline:  # until the second relation is under way
            ro = open_store(data, read_only=True)
            try:
                run = _runs(ro, "aie")
            finally:
                ro.close()
            if run and "below" in run[-1].message:
                break
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    w = MainWindow(data_dir=data, settings=app_settings(tmp_path / "s.ini"))
    qtbot.addWidget(w)
    w.show()
    run = _runs(w.store, "aie")[-1]
    assert run.status == "interrupted"
    panel = w.jobs_panel
    panel.select_run(run.id)
    assert "ended before it did" in panel.log.toPlainText()
    seen = []
    w.jobs.progressed.connect(lambda job, p: seen.append(p.done))
    qtbot.mouseClick(panel.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _last_status(w.store, "aie") == "done", timeout=240000)
    total = 2 * N * 4
    assert seen and min(seen) >= total // 4  # 'above' was finished: the resumed job starts after it
    with w.store.session() as s:
        rels = s.scalars(select(m.AIEResultRow.relation).where(m.AIEResultRow.run_id == run.id)).all()
    assert sorted(rels) == ["above", "below", "left", "right"]
    w.close()


def test_closing_the_window_during_a_job_stops_it_at_once(qtbot, window):
    from mfv_desktop.jobs import AIESpec

    _add_scenes(window.store)
    job = window.submit_spec(AIESpec(scenes="dataset:sample", n_prompts=200, method="reference"), "AIE")
    qtbot.waitUntil(lambda: job.progress is not None and job.progress.done > 0, timeout=60000)
    t0 = time.perf_counter()
    window.close()  # at once, or "stopping…" until the job's step under way ends
    qtbot.waitUntil(lambda: not window.isVisible() and not job.worker.is_running, timeout=10000)
    assert time.perf_counter() - t0 < 10 and job.status == "cancelled"


def test_while_a_job_runs_garbage_is_collected_on_the_gui_thread_only(qtbot, window):
    """A worker that collects a closed widget's reference cycle would destroy Qt objects off the GUI
    thread (a deadlock seen in the test suite); automatic collection is off while jobs run."""
    import gc
    import threading

    collected_in = []
    gc.callbacks.append(lambda phase, info: phase == "start" and collected_in.append(threading.current_thread()))
    try:

        def work():
            for i in range(30):
                junk = [[] for _ in range(5000)]
                for a, b in zip(junk, junk[1:]):
                    a.append(b)
                    b.append(a)
                time.sleep(0.01)
                yield Progress(i + 1, 30, "junk")
            return gc.isenabled()

        job = window.jobs.submit(work, "garbage")
        qtbot.waitUntil(lambda: job.status == "done", timeout=30000)
    finally:
        gc.callbacks.pop()
    assert job.result is False  # automatic collection was off inside the job
    assert collected_in and all(t is threading.main_thread() for t in collected_in)
    qtbot.waitUntil(gc.isenabled, timeout=5000)  # and back on once no job runs
