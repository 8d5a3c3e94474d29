"""The Jobs panel at its default size in the window: the list and the details side by side, several
runs in view, the newest run in view as it comes (also when an older one is selected), details as a
readable form (what, on which data and model, when and how long, the result's numbers) with the raw
spec one tab away; the log names runs by the numbers the panel shows."""

from __future__ import annotations

import logging
import time

import pytest
from PySide6.QtCore import QPoint, Qt

from mfv_desktop.progress import Progress
from mfv_desktop.specs import ModelRef
from mfv_desktop.store import models as m

pytestmark = pytest.mark.usefixtures("qapp")

AIE_RESULT = {
    "relations": {
        "above": {
            "n_prompts": 4,
            "base_prob": 0.00708,
            "max": 0.62896,
            "argmax": [3, 0],
            "clean_accuracy": 1.0,
            "matched_only": True,
            "n_matched": 4,
            "n_corrupted": 4,
        },
        "left": {"n_prompts": 4, "base_prob": 0.0013, "max": 0.8818, "argmax": [3, 1], "clean_accuracy": 0.75},
    }
}


def _add_run(store, spec, status="done", result=None, seconds=21.77, error=None, provenance=None) -> int:
    now = time.time()
    with store.session() as s:
        row = m.Run(
            kind=spec.kind,
            spec=spec.to_json(),
            status=status,
            done=4,
            total=4,
            message=status,
            error=error,
            provenance=provenance or {},
            result=result,
            created=now - seconds - 1,
            started=now - seconds,
            finished=now,
            seconds=seconds,
        )
        s.add(row)
        s.flush()
        return row.id


def _quick(monkeypatch, step_s: float = 0.0):
    """The `tasks` job made quick (one step): submit `TasksSpec(scenes="s")`."""
    from mfv_desktop import jobs

    def job(spec, *a, **kw):
        yield Progress(0, 1, "one step")
        time.sleep(step_s)
        return {"tasks": 0}

    monkeypatch.setitem(jobs.JOBS, "tasks", (jobs.TasksSpec, job))
    return jobs.TasksSpec(scenes="s")


def _row_of(panel, run_id: int) -> int:
    return next(i for i, (_, run) in enumerate(panel._rows) if run is not None and run.id == run_id)


def _in_view(table, row: int) -> bool:
    rect = table.visualRect(table.model().index(row, 0))
    return rect.isValid() and table.viewport().rect().contains(rect)


def test_at_its_default_size_the_panel_shows_several_runs_beside_the_details(qtbot, window):
    from mfv_desktop.jobs import GenerateSpec

    for seed in range(8):
        _add_run(window.store, GenerateSpec(n_scenes=10, seed=seed, split="s"))
    panel = window.jobs_panel
    panel.refresh()
    qtbot.wait(50)
    in_view = [i for i in range(panel.table.rowCount()) if _in_view(panel.table, i)]
    assert len(in_view) >= 4, f"{len(in_view)} rows in view at the default size"
    # the details stand beside the list, not under it
    left_of_details = panel.details.mapTo(panel, QPoint(0, 0)).x()
    assert left_of_details >= panel.table.mapTo(panel, QPoint(panel.table.width(), 0)).x()
    assert panel.details.height() >= panel.table.height() // 2


def test_the_newest_run_comes_into_view_when_an_older_one_is_selected(qtbot, window, monkeypatch):
    from mfv_desktop.jobs import GenerateSpec

    ids = [_add_run(window.store, GenerateSpec(n_scenes=10, seed=seed, split="s")) for seed in range(30)]
    panel = window.jobs_panel
    panel.refresh()
    older = _row_of(panel, ids[5])
    panel.table.scrollToBottom()
    rect = panel.table.visualRect(panel.table.model().index(older, 1))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.selected()[1].id == ids[5]

    job = window.submit_spec(_quick(monkeypatch, 0.3), "task set")
    qtbot.waitUntil(lambda: job.run_id is not None, timeout=20000)
    qtbot.waitUntil(lambda: job.status == "done", timeout=20000)
    new = _row_of(panel, job.run_id)
    assert new == 0 and _in_view(panel.table, new)  # the newest run on top, in view
    assert panel.selected()[1].id == ids[5]  # the user's selection is kept


def test_the_details_are_a_readable_form_with_the_raw_spec_a_tab_away(qtbot, window):
    from mfv_desktop.jobs import AIESpec, ExtractSpec

    aie = _add_run(
        window.store,
        AIESpec(scenes="dataset:sample", relations=("above", "left"), n_prompts=4, model=ModelRef("bundled")),
        result=AIE_RESULT,
    )
    vec = _add_run(
        window.store,
        ExtractSpec(aie="aie:3", relation="above", heads=((3, 0), (3, 1)), strength=2.0),
        result={"vector": "vector:7", "heads": [[3, 0], [3, 1]], "norm": 1.234, "layer": 2},
        seconds=0.4,
    )
    panel = window.jobs_panel
    panel.refresh()
    rect = panel.table.visualRect(panel.table.model().index(_row_of(panel, aie), 1))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    text = panel.details.text()
    for expected in (
        f"run {aie}",
        "AIE",
        "data set sample",
        "above, left",
        "bundled · cpu · fp32",
        "done",
        "21.8 s",
        "clean accuracy 1.00",
        "AIE max 0.629 at layer 3, head 0",
        "clean accuracy 0.75",
    ):
        assert expected in text, (expected, text)
    assert "{" not in text  # no raw JSON in the form
    assert '"n_prompts": 4' in panel.details.spec_text()
    assert panel.details.tabs.tabText(1).lower().startswith("spec")

    panel.select_run(vec)
    text = panel.details.text()
    assert "vector 7" in text and "AIE result 3" in text and "2 heads" in text and "layer 2" in text


def test_the_log_names_runs_by_the_numbers_the_panel_shows(qtbot, window, monkeypatch, caplog):
    from mfv_desktop.jobs import AIESpec, GenerateSpec

    caplog.set_level(logging.INFO, logger="mfv_desktop.jobs")
    _add_run(window.store, GenerateSpec(n_scenes=10))  # run 1: tickets and run ids differ from here on
    job = window.submit_spec(_quick(monkeypatch), "task set")
    qtbot.waitUntil(lambda: job.status == "done", timeout=20000)
    refused = window.submit_spec(AIESpec(scenes="dataset:x", n_prompts=0), "AIE")  # fails before its run exists
    qtbot.waitUntil(lambda: refused.status == "failed", timeout=20000)
    text = caplog.text
    assert f"run {job.run_id} started: task set" in text and f"run {job.run_id} done after" in text
    assert window.jobs_panel.table.item(_row_of(window.jobs_panel, job.run_id), 0).text() == str(job.run_id)
    assert "None" not in text and f"job {job.ticket}" not in text
    assert "AIE failed before its run was recorded" in text
