"""Every view shows the state of the run it names, live and after a restart (issue 18, defect 4):
the AIE maps follow a cancelled and resumed run to its end, say what they wait for, and the status
says running (not queued) while the job runs; the layer sweep tab of a new window draws the run it
selects, with that run's vector; Apply clears an answer that is not about the image and anchor shown.
Driven like a user, on the bundled model and small generated data sets."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from mfv_desktop.store import runs as run_repo

pytestmark = pytest.mark.usefixtures("qapp")


def add_scenes(store, n=24, dataset="sample"):
    from mfv_desktop.jobs import GenerateSpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.progress import run_to_end

    run_to_end(run_in_store(store, GenerateSpec(n_scenes=n, seed=5, split="sample", canvas=256), dataset=dataset))


def aie_panel_for(qtbot, window, relations=("above", "below"), n_prompts=6):
    panel = window.show_tab("aie")
    panel.n_prompts.setValue(n_prompts)
    panel.method.setCurrentText("fast")
    for rel, box in panel.relation_boxes.items():
        box.setChecked(rel in relations)
    return panel


def test_after_cancel_and_resume_the_aie_maps_fill_in_and_say_done(qtbot, window):
    """Cancelled while the second relation's mean activations are computed, resumed from the Jobs
    panel: the second map fills in from the resumed job and the status says the run is done."""
    add_scenes(window.store)
    panel = aie_panel_for(qtbot, window)

    def cancel_at_below(job, p):
        if p.message.startswith("below") and job.status == "running":
            window.jobs.cancel(job)  # stops at its next yield, before 'below' is measured

    window.jobs.progressed.connect(cancel_at_below)
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    job = window.jobs.jobs[-1]
    qtbot.waitUntil(lambda: job.status not in ("queued", "running"), timeout=120000)
    assert job.status == "cancelled", (job.status, job.error)
    window.jobs.progressed.disconnect(cancel_at_below)
    assert "cancelled" in panel.status.text() and "Resume" in panel.status.text()

    jobs = window.jobs_panel
    jobs.select_run(job.run_id)
    qtbot.mouseClick(jobs.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: run_repo.get_run(window.store, job.run_id).status == "done", timeout=120000)
    qtbot.waitUntil(lambda: "done" in panel.status.text(), timeout=10000)
    assert "indirect effects" not in panel.status.text()
    stored = panel.load_aie(job.run_id)
    assert panel.shown_run == job.run_id and sorted(stored) == ["above", "below"]
    for rel in ("above", "below"):  # the maps show what the run measured, to its end
        np.testing.assert_allclose(panel.maps[rel].aie, stored[rel][0])
        assert panel.maps[rel].message_text() == ""


def test_a_new_window_shows_a_cancelled_aie_run_as_it_was_left(qtbot, window, tmp_path):
    """A run cancelled during its second relation (from the CLI, say): a new window's AIE tab shows
    the first map, and the second says it was not measured and how to finish it."""
    from mfv_desktop.jobs import AIESpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.progress import Cancelled, drive
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    add_scenes(window.store)
    seen: list[str] = []
    spec = AIESpec(scenes="dataset:sample", relations=("above", "below"), n_prompts=6)
    with pytest.raises(Cancelled):
        drive(run_in_store(window.store, spec), lambda p: seen.append(p.message), lambda: seen[-1].startswith("below"))
    run = run_repo.list_runs(window.store, kind="aie")[0]
    assert run.status == "cancelled"

    again = MainWindow(data_dir=window.store.data_dir, settings=app_settings(tmp_path / "again.ini"))
    qtbot.addWidget(again)
    again.show()
    panel = again.show_tab("aie")
    assert panel.shown_run == run.id and set(panel.maps) == {"above", "below"}
    assert panel.maps["above"].aie is not None
    assert panel.maps["below"].aie is None
    assert "not measured" in panel.maps["below"].message_text() and "cancelled" in panel.maps["below"].message_text()
    assert "cancelled: 1 of 2 relations measured" in panel.status.text()
    again.close()


def test_a_map_says_it_waits_while_mean_activations_are_computed(qtbot, window):
    add_scenes(window.store)
    panel = aie_panel_for(qtbot, window)
    seen: list[tuple[str, str, str]] = []

    def look(job, p):  # after the panel has drawn this progress
        if "mean activations" in p.message:
            rel = p.partial["relation"]
            seen.append((rel, panel.maps[rel].message_text(), panel.maps["below"].message_text()))

    window.jobs.progressed.connect(look)
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    job = window.jobs.jobs[-1]
    qtbot.waitUntil(lambda: job.status == "done", timeout=120000)
    window.jobs.progressed.disconnect(look)
    above = [s for s in seen if s[0] == "above"]
    assert above and all("mean activations" in text for _, text, _ in above), seen
    assert all("waiting" in below for _, _, below in above), seen  # 'below' comes after 'above'


def test_the_aie_status_says_running_while_the_job_runs(qtbot, window):
    add_scenes(window.store)
    panel = aie_panel_for(qtbot, window, relations=("above",), n_prompts=4)
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    job = window.jobs.jobs[-1]
    assert job.status == "running"  # nothing ran before it: it started at once
    assert "queued" not in panel.status.text() and "running" in panel.status.text()
    qtbot.waitUntil(lambda: job.status == "done", timeout=120000)
    qtbot.waitUntil(lambda: "done" in panel.status.text(), timeout=10000)


def test_the_sweep_tab_of_a_new_window_draws_the_run_it_selects_with_its_vector(qtbot, window, stocked, tmp_path):
    from mfv_desktop.jobs import SweepSpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.progress import run_to_end
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    vectors, _ = stocked
    swept = vectors["above"]  # not the newest vector: the one a vector list shows first
    spec = SweepSpec(vector=f"vector:{swept}", scenes="dataset:bundled", n_prompts=6, strengths=(1.0, 2.0), ks=())
    run_id, result = run_to_end(run_in_store(window.store, spec))

    again = MainWindow(data_dir=window.store.data_dir, settings=app_settings(tmp_path / "again.ini"))
    qtbot.addWidget(again)
    again.show()
    sweep = again.show_tab("sweep")
    assert sweep.results.currentData() == run_id
    assert sweep.shown is not None and sweep.shown["accuracy"] == result["accuracy"]
    curves = [i for i in sweep.plot.getPlotItem().listDataItems() if type(i).__name__ == "PlotDataItem"]
    assert [list(c.yData) for c in curves if c.yData is not None and len(c.yData)] == result["accuracy"]
    assert sweep.vector.currentData() == swept  # the vector of the curve, not the newest
    again.close()


def test_apply_clears_an_answer_about_another_image_or_anchor(qtbot, window, stocked):
    vectors, scenes = stocked
    first, second = sorted(scenes.values())[:2]
    window.library.select_scene(first)
    window.show_scene(first)
    panel = window.show_tab("apply")
    names = panel.pane.view.object_names()
    panel.anchor.setText(names[0])
    panel.vectors.check([vectors["above"]])
    panel.own_strength.setChecked(False)
    panel.strength.setValue(2.0)
    qtbot.mouseClick(panel.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(panel.shown_bars()), timeout=120000)
    answer = panel.summary.text()
    assert "without" in answer

    panel.anchor.setText(names[1])  # another anchor: the chart was about the first
    assert panel.shown_bars() == [] and panel.summary.text() != answer
    panel.anchor.setText(names[0])  # back: the answer is about this image and anchor again
    assert panel.shown_bars() and panel.summary.text() == answer

    window.library.select_scene(second)  # another image
    window.show_scene(second)
    qtbot.waitUntil(lambda: panel.pane.scene_id == second, timeout=5000)
    assert panel.shown_bars() == [] and "without" not in panel.summary.text()
