"""The scene canvas, driven with real mouse and key events: drawing, moving, resizing, selecting,
deleting and stamping emit the right intents; arrows, zoom and the drawn scene look right."""

from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from mfv_desktop.scenes import Box  # noqa: E402
from mfv_desktop.store.scenes import Label, ObjectView  # noqa: E402
from mfv_desktop.ui.curation.canvas import CONFIRMED, HANDLE_PX, SUGGESTED, SceneCanvas  # noqa: E402

CUP = ObjectView(1, "cup", Box(20, 20, 70, 60), None)
CAR = ObjectView(2, "car", Box(110, 80, 180, 130), None)
LABELS = [
    Label(1, "cup", "above_left", "car", "user", "confirmed"),
    Label(2, "car", "below_right", "cup", "geometry", "suggested"),
    Label(3, "cup", "left", "car", "geometry", "rejected"),
]


def _photo(path, size=(200, 150)) -> str:
    img = Image.new("RGB", size, (235, 235, 220))
    ImageDraw.Draw(img).rectangle([60, 50, 140, 100], fill=(90, 120, 200))
    img.save(path)
    return str(path)


@pytest.fixture
def photo(tmp_path) -> str:
    return _photo(tmp_path / "photo.png")


@pytest.fixture
def canvas(qtbot, photo) -> SceneCanvas:
    c = SceneCanvas()
    c.resize(640, 500)
    qtbot.addWidget(c)
    c.show()
    qtbot.waitExposed(c)
    c.show_scene(photo, 200, 150, [CUP, CAR], LABELS)
    return c


def at(canvas: SceneCanvas, x: float, y: float) -> QPoint:
    """Image pixel (x, y) as a viewport position."""
    return canvas.mapFromScene(QPointF(x, y))


def drag(qtbot, canvas: SceneCanvas, a: tuple[float, float], b: tuple[float, float], release: bool = True) -> None:
    vp, pa, pb = canvas.viewport(), at(canvas, *a), at(canvas, *b)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=pa)
    for t in (0.25, 0.5, 0.75, 1.0):
        qtbot.mouseMove(vp, QPoint(round(pa.x() + t * (pb.x() - pa.x())), round(pa.y() + t * (pb.y() - pa.y()))))
    if release:
        qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=pb)


def record(signal) -> list[tuple]:
    got: list[tuple] = []
    signal.connect(lambda *args: got.append(args))
    return got


def close(box: Box, expected: tuple[float, float, float, float], tol: float = 1.5) -> bool:
    return all(abs(a - b) <= tol for a, b in zip((box.x0, box.y0, box.x1, box.y1), expected))


def test_box_mode_drag_draws_a_box_clipped_to_the_image(qtbot, canvas):
    canvas.set_mode("box")
    drawn = record(canvas.boxDrawn)
    drag(qtbot, canvas, (30, 40), (120, 100))
    assert len(drawn) == 1 and close(drawn[0][0], (30, 40, 120, 100))
    drag(qtbot, canvas, (190, 20), (150, 140))  # drawn right to left: normalised
    assert len(drawn) == 2 and close(drawn[1][0], (150, 20, 190, 140))
    drag(qtbot, canvas, (150, 100), (260, 200))  # beyond the image: clipped
    assert len(drawn) == 3 and close(drawn[2][0], (150, 100, 200, 150)) and drawn[2][0].as_list()[2:] == [200, 150]
    drag(qtbot, canvas, (10, 10), (12, 12))  # too small: nothing
    assert len(drawn) == 3
    assert canvas.rubber is None and len(canvas.box_items()) == 2  # the canvas does not add the box itself


def test_moving_a_box_emits_one_change_on_release(qtbot, canvas):
    selected, changed = record(canvas.objectSelected), record(canvas.boxChanged)
    drag(qtbot, canvas, (45, 40), (65, 50), release=False)
    assert selected == [(1,)] and changed == []  # nothing during the drag
    assert close(canvas.box_items()[1].obj.box, (20, 20, 70, 60), tol=0)  # the shown object is not edited
    qtbot.mouseRelease(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at(canvas, 65, 50))
    assert len(changed) == 1
    oid, box = changed[0]
    assert oid == 1 and close(box, (40, 30, 90, 70))
    drag(qtbot, canvas, (150, 100), (250, -50))  # dragged out: kept inside the image
    assert changed[-1][0] == 2 and close(changed[-1][1], (130, 0, 200, 50), tol=0.01)


def test_resizing_with_a_handle_emits_the_new_corner(qtbot, canvas, photo):
    canvas.select_object(1)
    changed = record(canvas.boxChanged)
    drag(qtbot, canvas, (70, 60), (100, 90))  # bottom-right handle
    assert len(changed) == 1 and changed[0][0] == 1 and close(changed[0][1], (20, 20, 100, 90))
    canvas.show_scene(photo, 200, 150, [CUP, CAR], [])  # as the window does after an edit (the box is back)
    canvas.zoom_in()
    canvas.zoom_in()
    canvas.centerOn(20, 40)
    drag(qtbot, canvas, (20, 40), (-30, 40))  # the left edge's handle, zoomed in, dragged past the image
    assert len(changed) == 2 and close(changed[1][1], (0, 20, 70, 60), tol=0.01)


def test_handles_show_on_the_selected_box_at_a_constant_size(qtbot, canvas):
    item = canvas.box_items()[1]
    assert not any(h.isVisible() for h in item.handle_items.values())
    canvas.select_object(1)
    assert canvas.selected_object() == 1 and len(item.handle_items) == 8
    assert all(h.isVisible() for h in item.handle_items.values())
    assert item.pen().widthF() > canvas.box_items()[2].pen().widthF()  # highlighted

    def on_screen(h):
        return h.deviceTransform(canvas.viewportTransform()).mapRect(h.rect()).width()

    h = item.handle_items["br"]
    before = on_screen(h)
    for _ in range(4):
        canvas.zoom_in()
    assert before == pytest.approx(HANDLE_PX, abs=1) and on_screen(h) == pytest.approx(before, abs=0.5)
    assert canvas.mapFromScene(h.scenePos()) == at(canvas, 70, 60)


def test_click_selects_delete_and_double_click_ask(qtbot, canvas):
    selected, deleted = record(canvas.objectSelected), record(canvas.deleteRequested)
    renamed = record(canvas.renameRequested)
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at(canvas, 150, 100))
    assert selected == [(2,)] and canvas.selected_object() == 2
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    qtbot.keyClick(canvas, Qt.Key.Key_Backspace)
    assert deleted == [(2,), (2,)]
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at(canvas, 100, 20))  # empty space
    assert selected[-1] == (-1,) and canvas.selected_object() is None
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert len(deleted) == 2
    qtbot.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at(canvas, 40, 30))
    assert renamed == [(1,)]
    qtbot.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at(canvas, 100, 20))
    assert renamed == [(1,)]


def test_stamp_mode_previews_and_places_the_stamp_centred_at_the_click(qtbot, canvas):
    canvas.set_stamp("procedural:apple", 40)
    canvas.set_mode("stamp")
    placed = record(canvas.stampPlaced)
    qtbot.mouseMove(canvas.viewport(), at(canvas, 100, 75))
    assert canvas.preview is not None and canvas.preview.opacity() == pytest.approx(0.5)
    assert canvas.preview.sceneBoundingRect().center().x() == pytest.approx(100, abs=1)
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at(canvas, 100, 75))
    assert len(placed) == 1
    stamp_id, box = placed[0]
    assert stamp_id == "procedural:apple" and max(box.width, box.height) == pytest.approx(40)
    assert box.center == pytest.approx((100, 75), abs=1)
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at(canvas, 3, 148))  # near a corner
    box = placed[1][1]
    assert box.x0 == 0 and box.y1 == 150 and box.inside(200, 150)
    canvas.set_mode("select")
    assert canvas.preview is None


def test_arrows_go_from_subject_to_object_and_skip_rejected(canvas):
    arrows = {a.relation: a for a in canvas.arrow_items()}
    assert set(arrows) == {"above_left", "below_right"}  # the rejected "left" is not drawn
    a = arrows["above_left"]
    assert (a.subject, a.object, a.status) == ("cup", "car", "confirmed")
    assert (a.start.x(), a.start.y()) == CUP.box.center and (a.end.x(), a.end.y()) == CAR.box.center
    assert (arrows["below_right"].start.x(), arrows["below_right"].start.y()) == CAR.box.center
    pens = {info.status: item.pen() for info, item in canvas.arrows}
    assert pens["confirmed"].style() == Qt.PenStyle.SolidLine and pens["confirmed"].color() == CONFIRMED
    assert pens["suggested"].style() == Qt.PenStyle.DashLine and pens["suggested"].color() == SUGGESTED
    canvas.clear()
    assert canvas.arrow_items() == [] and canvas.box_items() == {} and canvas.scene().items() == []


def test_zoom_is_kept_for_the_same_scene_and_fitted_for_another(qtbot, canvas, tmp_path, photo):
    fitted = canvas.transform().m11()
    assert 200 * fitted == pytest.approx(canvas.viewport().width(), rel=0.05)  # the image fills the width
    canvas.zoom_in()
    event = QWheelEvent(
        QPointF(320, 250),
        canvas.viewport().mapToGlobal(QPointF(320, 250)),
        QPoint(0, 0),
        QPoint(0, 120),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.ControlModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas.viewport(), event)  # ctrl+wheel
    zoomed = canvas.transform().m11()
    assert zoomed == pytest.approx(fitted * 1.25**2)
    canvas.select_object(2)
    moved = ObjectView(1, "cup", Box(30, 20, 80, 60), None)  # after an edit
    canvas.show_scene(photo, 200, 150, [moved, CAR], LABELS[:1])
    assert canvas.transform().m11() == pytest.approx(zoomed) and canvas.selected_object() == 2
    other = _photo(tmp_path / "other.png", (400, 300))
    canvas.show_scene(other, 400, 300, [ObjectView(7, "key", Box(10, 10, 50, 50), None)], [])
    assert canvas.transform().m11() == pytest.approx(fitted / 2, rel=0.05)
    assert canvas.selected_object() is None


def test_pixels_are_crisp_zoomed_in_and_smooth_zoomed_out(canvas):
    canvas.fit()
    while canvas.transform().m11() <= 1.0:
        canvas.zoom_in()
    assert canvas.image_item.transformationMode() == Qt.TransformationMode.FastTransformation
    while canvas.transform().m11() > 1.0:
        canvas.zoom_out()
    assert canvas.image_item.transformationMode() == Qt.TransformationMode.SmoothTransformation


def test_dragging_the_background_pans(qtbot, canvas):
    for _ in range(4):
        canvas.zoom_in()
    bar = canvas.horizontalScrollBar()
    bar.setValue((bar.minimum() + bar.maximum()) // 2)
    before = bar.value()
    qtbot.mouseClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=at(canvas, 100, 20))  # nothing selected there
    vp = canvas.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=QPoint(300, 20))
    qtbot.mouseMove(vp, QPoint(250, 20))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=QPoint(250, 20))
    assert bar.value() == before + 50


def test_a_drawn_scene_shows_its_stamps(qtbot, canvas, tmp_path, monkeypatch):
    apple = ObjectView(1, "apple", Box(20, 20, 70, 70), "procedural:apple")
    car = ObjectView(2, "car", Box(100, 80, 180, 130), "procedural:car")
    canvas.show_scene(None, 200, 150, [apple, car], [Label(1, "apple", "above_left", "car", "user", "confirmed")])
    canvas.select_object(1)
    shot = tmp_path / "canvas.png"
    assert canvas.grab().save(str(shot))
    img = Image.open(shot).convert("RGB")
    assert img.getextrema() != ((255, 255), (255, 255), (255, 255))  # not blank
    p = at(canvas, 45, 50)  # inside the apple: red-ish, not the white canvas
    r, g, b = img.getpixel((p.x(), p.y()))
    assert r > 150 and g < 120 and b < 120
    p = at(canvas, 190, 20)  # an empty part of the white canvas
    assert img.getpixel((p.x(), p.y())) == (255, 255, 255)

    import mfv_desktop.ui.curation.canvas as canvas_module

    calls = []
    real = canvas_module.stamp_from_id
    monkeypatch.setattr(canvas_module, "stamp_from_id", lambda sid: calls.append(sid) or real(sid))
    canvas.zoom_in()
    zoomed = canvas.transform().m11()
    key = ObjectView(3, "key", Box(150, 10, 190, 40), "procedural:key")
    canvas.show_scene(None, 200, 150, [apple, car, key], [])  # a stamp placed: the same drawn scene
    assert canvas.transform().m11() == pytest.approx(zoomed) and canvas.selected_object() == 1
    assert calls == ["procedural:key"]  # the apple and the car come from the cache
