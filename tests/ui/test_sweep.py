"""The Layer sweep tab with real mouse events on the bundled model's vectors: every point shows its n
and 95% Wilson interval (error bars, and in words under the mouse), the best point is chosen by the
stated rule, and "Use this layer and strength" sets the vector's defaults, undoably, for the jobs
that read it from the store."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from mfv_desktop.stats import BEST_RULE, best_point, wilson_interval
from mfv_desktop.store import vectors as vrepo

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def swept(qtbot, window, stocked):
    """A finished sweep of the 'above' vector (two strengths, 6 prompts), shown on its tab."""
    from mfv_desktop.jobs import SweepSpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.progress import run_to_end

    vector_id = stocked[0]["above"]
    spec = SweepSpec(vector=f"vector:{vector_id}", scenes="dataset:bundled", n_prompts=6, strengths=(2.0, 1.0), ks=())
    run_id, result = run_to_end(run_in_store(window.store, spec))
    panel = window.show_tab("sweep")
    panel.resize(900, 600)
    qtbot.waitExposed(panel)
    qtbot.wait(50)
    assert panel.shown_run == run_id
    return panel, vector_id, dict(result)


def widget_point(panel, layer: float, accuracy: float):
    vb = panel.plot.getPlotItem().vb
    return panel.plot.mapFromScene(vb.mapViewToScene(QPointF(layer, accuracy)))


def test_each_point_has_its_n_and_a_wilson_interval(qtbot, swept):
    panel, _, result = swept
    n = result["baseline"]["n"]
    assert n == 6
    items = panel.plot.getPlotItem().items
    bars = [i for i in items if type(i).__name__ == "ErrorBarItem"]
    assert len(bars) == 2  # one per strength
    for bar, row in zip(bars, result["accuracy"]):
        lo, hi = zip(*(wilson_interval(round(a * n), n) for a in row))
        np.testing.assert_allclose(bar.opts["y"] + bar.opts["top"], hi, atol=1e-9)
        np.testing.assert_allclose(bar.opts["y"] - bar.opts["bottom"], lo, atol=1e-9)
    # the point under the mouse, in words: "layer L, strength S: k/n = p% (lo–hi%)"
    row, other = (result["accuracy"][result["strengths"].index(x)] for x in (1.0, 2.0))
    apart = [x for j, x in enumerate(result["layers"]) if row[j] != other[j]]
    if not apart:
        pytest.skip("the two curves meet at every point")
    layer = apart[-1]
    acc = row[result["layers"].index(layer)]
    qtbot.mouseMove(panel.plot.viewport(), widget_point(panel, layer, acc))
    k = round(acc * n)
    lo, hi = wilson_interval(k, n)
    expected = f"layer {layer}, strength 1.0: {k}/{n} = {acc:.0%} ({lo * 100:.0f}–{hi:.0%})"
    qtbot.waitUntil(lambda: panel.readout.text() == expected, timeout=3000)
    assert panel.plot.getPlotItem().vb.toolTip() == expected


def test_the_best_point_follows_the_stated_rule_and_becomes_the_vectors_default(qtbot, window, swept):
    panel, vector_id, result = swept
    layer, strength = best_point(result["layers"], result["strengths"], result["accuracy"])
    assert BEST_RULE in panel.best.text() and panel.best.text().startswith(f"best: layer {layer}, strength")
    before = vrepo.get_vector(window.store, vector_id)
    assert panel.use_button.isEnabled()
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    row = vrepo.get_vector(window.store, vector_id)
    assert (row["layer"], row["strength"]) == (layer, strength)

    # a job that reads the vector from the store adds it there by default
    from mfv_desktop.jobs.io import Source

    fv = Source(window.store).vector(f"vector:{vector_id}").fv
    assert (fv.layer, fv.strength) == (layer, strength)

    window.acts["edit.undo"].trigger()  # Edit > Undo: the old defaults
    row = vrepo.get_vector(window.store, vector_id)
    assert (row["layer"], row["strength"]) == (before["layer"], before["strength"])
    window.acts["edit.redo"].trigger()
    assert vrepo.get_vector(window.store, vector_id)["layer"] == layer

    # click another point: that one is used
    strong, weak = (result["accuracy"][result["strengths"].index(x)] for x in (2.0, 1.0))
    apart = [x for j, x in enumerate(result["layers"]) if (x, 2.0) != (layer, strength) and strong[j] != weak[j]]
    if not apart:
        pytest.skip("the two curves meet at every point")
    other = apart[0]
    acc = strong[result["layers"].index(other)]
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=widget_point(panel, other, acc))
    assert panel.chosen == (other, 2.0) and panel.best.text().startswith(f"chosen: layer {other}, strength 2.0")
    qtbot.mouseClick(panel.use_button, Qt.MouseButton.LeftButton)
    row = vrepo.get_vector(window.store, vector_id)
    assert (row["layer"], row["strength"]) == (other, 2.0)
