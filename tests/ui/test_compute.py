"""Settings > Compute, and an AIE run from the AIE tab on Ray workers: the heatmap fills in as batches
come back, and the Jobs panel says how many workers compute."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from mfv_desktop.compute import Compute

pytestmark = pytest.mark.usefixtures("qapp")


def _settings_dialog(window):
    from mfv_desktop.ui.shell.settings import SettingsDialog

    return SettingsDialog(window.settings, window.acts, window)


def test_settings_compute_chooses_where_jobs_run_and_says_how_to_get_ray(qtbot, window, monkeypatch):
    from mfv_desktop.ui.shell import settings

    assert settings.compute_of(window.settings) == Compute()  # by default: this process
    d = _settings_dialog(window)
    qtbot.addWidget(d)
    assert not d.address.isEnabled() and not d.workers.isEnabled()
    d.executor.setCurrentIndex(1)  # Ray on this machine
    assert d.workers.isEnabled() and not d.address.isEnabled()
    d.workers.setValue(2)
    d.accept()
    assert settings.compute_of(window.settings) == Compute("ray", None, 2)
    assert window.jobs.compute() == Compute("ray", None, 2)  # what the next job runs on

    d = _settings_dialog(window)
    qtbot.addWidget(d)
    assert d.executor.currentIndex() == 1 and d.workers.value() == 2  # as saved
    d.executor.setCurrentIndex(2)  # a cluster
    assert d.address.isEnabled()
    d.address.setText(" 10.0.0.5:6379 ")
    d.workers.setValue(0)  # one per GPU or CPU
    assert d.workers.text() == "one per GPU or CPU"
    d.accept()
    assert settings.compute_of(window.settings) == Compute("ray", "10.0.0.5:6379", None)

    d = _settings_dialog(window)
    qtbot.addWidget(d)
    d.address.clear()  # a cluster without an address: the one this machine belongs to
    d.accept()
    assert settings.compute_of(window.settings) == Compute("ray", "auto", None)

    monkeypatch.setattr(settings, "ray_available", lambda: False)
    d = _settings_dialog(window)
    qtbot.addWidget(d)
    assert "pip install 'mfv_desktop[cluster]'" in d.compute_note.text()
    d.executor.setCurrentIndex(0)
    assert "pip install" not in d.compute_note.text()


def test_aie_from_the_gui_on_ray_workers_fills_the_heatmap(qtbot, window):
    pytest.importorskip("ray")
    from mfv_desktop.jobs.cluster import connect
    from tests.ui.test_science import _add_scenes, _last_status, _runs

    ray = connect(None, num_cpus=2)  # as the app would on the first job, here for the test to shut it down
    try:
        window.settings.setValue("compute/executor", "ray")
        window.settings.setValue("compute/workers", "2")
        _add_scenes(window.store, n=24)
        panel = window.show_tab("aie")
        panel.n_prompts.setValue(24)  # batches of 16: two per map
        for rel in ("left", "right", "below"):
            panel.relation_boxes[rel].setChecked(False)
        seen: list[tuple[int | None, int]] = []
        cells: list[str] = []

        def progressed(job, p) -> None:
            seen.append((p.workers, int(p.partial.get("n_prompts", 0))))
            table = window.jobs_panel.table
            cells.extend(table.item(r, 3).text() for r in range(table.rowCount()) if table.item(r, 3))

        window.jobs.progressed.connect(progressed)
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: _last_status(window.store, "aie") == "done", timeout=240000)
        assert {w for w, _ in seen if w is not None} == {2}
        assert any(c.endswith("· 2 workers") for c in cells), cells[-5:]
        # the map was drawn from partial results as batches came back, then the whole run
        partial = sorted({n for _, n in seen if n})
        assert len(partial) >= 2, partial
        qtbot.waitUntil(lambda: panel.shown_run is not None)
        run_id = _runs(window.store, "aie")[-1].id
        np.testing.assert_allclose(panel.maps["above"].aie, panel.load_aie(run_id)["above"][0])
    finally:
        ray.shutdown()
