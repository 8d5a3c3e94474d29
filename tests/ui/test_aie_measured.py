"""Every AIE map says what was measured (issue 18): the prompts kept and why, the mean activations'
prompts, the clean accuracy and the corrupted baseline, with the numbers stored with the result; a
legend says what the outlines mean. After a restart too: the tab reads them from the store."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("qapp")


def test_each_aie_map_says_what_it_was_measured_on(qtbot, window, tmp_path):
    from mfv_desktop.jobs import AIESpec, GenerateSpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.progress import run_to_end
    from mfv_desktop.store.results import aie_result_ids, read_aie_result
    from mfv_desktop.ui import MainWindow
    from mfv_desktop.ui.shell.settings import app_settings

    store = window.store
    run_to_end(run_in_store(store, GenerateSpec(n_scenes=16, seed=5, split="sample", canvas=256), dataset="sample"))
    spec = AIESpec(scenes="dataset:sample", relations=("above", "left"), n_prompts=6, matched_only=True)
    run_id, _ = run_to_end(run_in_store(store, spec))

    again = MainWindow(data_dir=store.data_dir, settings=app_settings(tmp_path / "again.ini"))  # a restart
    qtbot.addWidget(again)
    again.show()
    panel = again.show_tab("aie")
    assert panel.shown_run == run_id
    for rel, aie_id in aie_result_ids(store, run_id).items():
        data = read_aie_result(store, aie_id)
        meta = {**data.meta, **data.provenance}
        mp = panel.maps[rel]
        text = mp.measured.text()
        assert mp.measured.isVisibleTo(mp)
        n, kept = meta["n_corrupted"], meta["n_matched"]
        if kept:
            assert f"averaged over {kept} of {n} corrupted prompts whose clean prompt was answered" in text
        else:
            assert f"averaged over all {n} corrupted prompts (no clean prompt was answered" in text
        assert f"mean activations over {meta['mean_over']} " in text
        assert f"clean accuracy {meta['clean_accuracy']:.0%} ({round(meta['clean_accuracy'] * n)} of {n})" in text
        assert f"corrupted baseline P(answer) {meta['base_prob']:.3f}" in text
        legend = mp.legend.text()
        assert f"top {panel.top_k.value()} heads" in legend and "selected" in legend
    panel.top_k.setValue(3)  # the legend says how many are outlined
    assert "top 3 heads" in panel.maps["above"].legend.text()
    again.close()
