"""The dark theme, chosen in Settings (issue 18, defect 6): a disabled button looks disabled, placeholder
text is readable, and plots (the layer sweep, Apply's bars, an AIE map) turn dark with the window and
light again, as drawn on screen."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QPushButton

from mfv_desktop.store.labels import Label

pytestmark = pytest.mark.usefixtures("qapp")


def luminance(c: QColor) -> float:
    """WCAG relative luminance."""

    def lin(v: float) -> float:
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * lin(c.redF()) + 0.7152 * lin(c.greenF()) + 0.0722 * lin(c.blueF())


def contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def pixels(widget) -> np.ndarray:
    img = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.bytesPerLine() * img.height())
    return arr.reshape(img.height(), img.bytesPerLine())[:, : img.width() * 3].reshape(img.height(), img.width(), 3)


def drawn_colours(button: QPushButton) -> tuple[QColor, QColor]:
    """(background, text) of a button as drawn: its commonest colour inside the frame, and the colour
    farthest from it (the glyphs)."""
    a = pixels(button)[4:-4, 4:-4].reshape(-1, 3).astype(int)
    values, counts = np.unique(a, axis=0, return_counts=True)
    bg = values[counts.argmax()]
    text = a[np.abs(a - bg).sum(1).argmax()]
    return QColor(*map(int, bg)), QColor(*map(int, text))


def background_of(view) -> QColor:
    """A plot's background as drawn: the commonest colour of the widget."""
    a = pixels(view).reshape(-1, 3)
    values, counts = np.unique(a, axis=0, return_counts=True)
    return QColor(*map(int, values[counts.argmax()]))


@pytest.fixture
def themed(window):
    """The window; the application's style and palette as they were after the test."""
    app = QApplication.instance()
    style, palette = app.style().name(), QPalette(app.palette())
    yield window
    app.setStyle(style)
    app.setPalette(palette)


def choose_theme(qtbot, window, theme: str) -> None:
    """Settings > Theme, then OK, as a user does."""
    from mfv_desktop.ui.shell.settings import SettingsDialog

    def answer():
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, SettingsDialog)
        dialog.theme.setCurrentText(theme)
        ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)

    QTimer.singleShot(100, answer)
    window.open_settings()
    qtbot.wait(50)


def test_in_the_dark_theme_a_disabled_button_looks_disabled(qtbot, themed):
    window = themed
    choose_theme(qtbot, window, "dark")
    assert window.settings.value("theme") == "dark"
    enabled, disabled = window.show_tab("aie").run_button, window.jobs_panel.cancel_button  # no job to cancel
    assert enabled.isEnabled() and not disabled.isEnabled()
    bg_on, text_on = drawn_colours(enabled)
    bg_off, text_off = drawn_colours(disabled)
    assert luminance(bg_on) < 0.1  # dark buttons
    assert contrast(text_on, bg_on) >= 4.5  # enabled: clearly readable
    assert contrast(text_off, text_on) >= 2.0, (text_on.name(), text_off.name())  # disabled: clearly dimmer
    assert contrast(text_off, bg_off) < contrast(text_on, bg_on)


def test_in_the_dark_theme_placeholder_text_is_readable(qtbot, themed):
    window = themed
    choose_theme(qtbot, window, "dark")
    edit = window.show_tab("aie").label
    assert edit.placeholderText() and not edit.text()
    p = edit.palette()
    assert contrast(p.color(QPalette.ColorRole.PlaceholderText), p.color(QPalette.ColorRole.Base)) >= 3.0
    assert luminance(p.color(QPalette.ColorRole.Base)) < 0.05  # on a dark field


def test_plots_follow_the_theme(qtbot, themed):
    from mfv_desktop.ui.science.heatmap import AIEHeatmap

    window = themed
    heatmap = AIEHeatmap("above")
    qtbot.addWidget(heatmap)
    heatmap.resize(320, 280)
    heatmap.show()
    sweep = window.show_tab("sweep")
    plots = {"sweep": sweep.plot, "apply": window.show_tab("apply").plot, "AIE map": heatmap.view}
    choose_theme(qtbot, window, "dark")
    window.show_tab("sweep")
    for name, plot in plots.items():
        assert luminance(background_of(plot)) < 0.05, name
        if name == "sweep":  # axes and labels in a light colour on it
            axis = plot.getPlotItem().getAxis("left")
            assert contrast(axis.pen().color(), background_of(plot)) >= 4.5
    choose_theme(qtbot, window, "light")
    for name, plot in plots.items():  # and light again (pyqtgraph's own default is black)
        assert luminance(background_of(plot)) > 0.6, name


def test_the_big_answer_lines_follow_a_switch_to_the_dark_theme(qtbot, themed):
    """Apply's summary and Analogy's "A → B :: C → D" line were set with a style sheet and stayed a
    light box with black text on the dark window."""
    window = themed
    labels = [window.show_tab("apply").summary, window.show_tab("analogy").answer]
    for label in labels:
        label.setText("cup → spoon :: boat → D = ?")
    choose_theme(qtbot, window, "dark")
    for label in labels:
        a = pixels(label).reshape(-1, 3).astype(int)
        values, counts = np.unique(a, axis=0, return_counts=True)
        bg = values[counts.argmax()]
        drawn_bg, text = QColor(*map(int, bg)), QColor(*map(int, a[np.abs(a - bg).sum(1).argmax()]))
        assert luminance(drawn_bg) < 0.1, (label.text(), drawn_bg.name())  # the dark window, not a light box
        assert contrast(drawn_bg, text) >= 4.5, (drawn_bg.name(), text.name())


def test_relation_status_colours_are_readable_in_both_themes(qtbot, themed):
    """The green of "confirmed" (#1b7a2f) stood at 2.6:1 on the dark list."""
    window = themed
    rows = window.relations.table
    window.relations.show_labels(
        [Label(i, "cup", "above", "table", "user", s) for i, s in enumerate(("suggested", "confirmed", "rejected"))],
        ["cup", "table"],
    )
    for theme in ("dark", "light"):
        choose_theme(qtbot, window, theme)
        base = rows.palette().base().color()
        for row in range(3):
            text = rows.item(row, 3).foreground().color()
            assert contrast(text, base) >= 4.5, (theme, rows.item(row, 3).text(), text.name(), base.name())
