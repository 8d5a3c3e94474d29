"""The AIE heatmap with real mouse events: the value under the mouse, clicks select heads, the
top-k are marked, and a matrix that fills in keeps the selection."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402

from mfv_desktop.ui.science.heatmap import AIEHeatmap  # noqa: E402


@pytest.fixture
def heatmap(qtbot) -> AIEHeatmap:
    w = AIEHeatmap("above", top_k=3)
    w.resize(500, 420)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    return w


def _aie() -> np.ndarray:
    aie = np.zeros((6, 8))
    aie[2, 5], aie[3, 1], aie[1, 7], aie[4, 4] = 0.40, 0.25, 0.10, -0.05
    return aie


def _widget_point(w: AIEHeatmap, layer: int, head: int) -> QPoint:
    scene = w.plot.vb.mapViewToScene(QPointF(head, layer))
    return w.view.mapFromScene(scene)


def test_hover_reads_the_value_and_clicks_select_heads(qtbot, heatmap):
    heatmap.set_aie(_aie(), n_prompts=50)
    assert heatmap.top_heads() == [(2, 5), (3, 1), (1, 7)]
    qtbot.mouseMove(heatmap.view.viewport(), _widget_point(heatmap, 2, 5))
    qtbot.waitUntil(lambda: "layer 2, head 5" in heatmap.readout.text())
    assert "+0.4000" in heatmap.readout.text() and "top 1" in heatmap.readout.text()
    with qtbot.waitSignal(heatmap.selection_changed) as sig:
        qtbot.mouseClick(heatmap.view.viewport(), Qt.MouseButton.LeftButton, pos=_widget_point(heatmap, 4, 4))
    assert sig.args[0] == [(4, 4)]
    qtbot.mouseClick(heatmap.view.viewport(), Qt.MouseButton.LeftButton, pos=_widget_point(heatmap, 3, 1))
    assert heatmap.selected == [(4, 4), (3, 1)]
    qtbot.mouseClick(heatmap.view.viewport(), Qt.MouseButton.LeftButton, pos=_widget_point(heatmap, 4, 4))
    assert heatmap.selected == [(3, 1)]  # a second click drops it


def test_dragging_a_rectangle_adds_a_block_of_heads(qtbot, heatmap):
    heatmap.set_aie(_aie())
    heatmap.select([(0, 0)])
    vp = heatmap.view.viewport()
    a, b = _widget_point(heatmap, 1, 2), _widget_point(heatmap, 2, 4)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=a)
    for t in (0.2, 0.4, 0.6, 0.8, 1.0):
        qtbot.mouseMove(vp, QPoint(round(a.x() + t * (b.x() - a.x())), round(a.y() + t * (b.y() - a.y()))))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=b)
    assert heatmap.selected == [(0, 0), (1, 2), (1, 3), (1, 4), (2, 2), (2, 3), (2, 4)]


def test_partial_results_update_the_map_and_keep_the_selection(heatmap):
    aie = _aie()
    heatmap.set_aie(aie * 0.5, n_prompts=10)
    heatmap.select_top()
    assert heatmap.selected == [(2, 5), (3, 1), (1, 7)]
    aie[0, 0] = 0.9  # more prompts: a new top head
    heatmap.set_aie(aie, n_prompts=20)
    assert heatmap.top_heads()[0] == (0, 0)
    assert heatmap.selected == [(2, 5), (3, 1), (1, 7)]
    assert heatmap.bar.levels() == pytest.approx((-0.05, 0.9))
    assert "(20 prompts)" in heatmap.plot.titleLabel.text
    heatmap.set_aie(aie, levels=(0.0, 2.0))  # a colour range shared with another map
    assert heatmap.bar.levels() == pytest.approx((0.0, 2.0))


def test_export_png_csv_npy(tmp_path, heatmap):
    from PIL import Image

    with pytest.raises(ValueError, match="no AIE"):
        heatmap.export(str(tmp_path / "x.npy"))
    heatmap.set_aie(_aie())
    for name in ("map.png", "map.csv", "map.npy"):
        heatmap.export(str(tmp_path / name))
    assert Image.open(tmp_path / "map.png").size[0] > 100
    np.testing.assert_array_equal(np.load(tmp_path / "map.npy", allow_pickle=False), _aie())
    lines = (tmp_path / "map.csv").read_text().splitlines()
    assert lines[0].startswith("layer,head0") and len(lines) == 7
    assert float(lines[3].split(",")[6]) == pytest.approx(0.40)  # layer 2, head 5
    with pytest.raises(ValueError, match="use .png, .csv or .npy"):
        heatmap.export(str(tmp_path / "map.txt"))
