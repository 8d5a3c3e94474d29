"""Plots follow the app's theme: the colours a pyqtgraph plot draws with (background, axes and text,
grid, muted lines) taken from the application palette, and a way for each plot to style itself again
when the palette changes (Settings > Theme). pyqtgraph draws with its own global colours (white on
black by default), which neither the light nor the dark palette is: every plot of the app asks here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class PlotColours:
    background: str  # the plot area, the palette's Base
    foreground: str  # axes, tick labels, titles and value labels, the palette's Text
    muted: str  # secondary lines (a baseline), between the two
    legend_fill: QColor  # behind a legend: the background, nearly opaque
    dark: bool


def _mix(a: QColor, b: QColor, t: float) -> QColor:
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    )


def colours() -> PlotColours:
    """The colours for the application's current palette (a light default before there is an app)."""
    app = QGuiApplication.instance()
    palette = QGuiApplication.palette() if app is not None else QPalette()
    base = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text)
    fill = QColor(base)
    fill.setAlpha(225)
    return PlotColours(
        background=base.name(),
        foreground=text.name(),
        muted=_mix(text, base, 0.35).name(),
        legend_fill=fill,
        dark=base.lightness() < 128,
    )


def style_plot_item(plot: pg.PlotItem, c: PlotColours | None = None) -> None:
    """Axes, tick labels, axis labels and the title of one plot item in the theme's text colour."""
    c = c or colours()
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(c.foreground))
        axis.setTextPen(pg.mkPen(c.foreground))
        if axis.labelText:  # set again with the colour (pyqtgraph keeps the colour with the text)
            axis.setLabel(axis.labelText, units=axis.labelUnits or None, color=c.foreground)
    title = plot.titleLabel
    if title.text:
        title.setText(title.text, color=c.foreground)
    legend = plot.legend
    if legend is not None:
        legend.setBrush(pg.mkBrush(c.legend_fill))
        legend.setLabelTextColor(c.foreground)
        for _, label in legend.items:
            label.setText(label.text, color=c.foreground)


def style_plot_widget(widget: pg.PlotWidget | pg.GraphicsLayoutWidget) -> PlotColours:
    """A plot widget's background and every plot item in it, in the current theme's colours."""
    c = colours()
    widget.setBackground(c.background)
    if isinstance(widget, pg.PlotWidget):
        style_plot_item(widget.getPlotItem(), c)
    else:
        for item in widget.ci.items:
            if isinstance(item, pg.PlotItem):
                style_plot_item(item, c)
    return c


class _ThemeWatch(QObject):
    """Calls `restyle` when the widget's palette (the app's theme) changes."""

    def __init__(self, widget: QWidget, restyle: Callable[[], None]) -> None:
        super().__init__(widget)
        self.restyle = restyle
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange):
            self.restyle()
        return False


def follow_theme(widget: QWidget, restyle: Callable[[], None] | None = None) -> None:
    """Style a plot widget now and again whenever the theme changes. `restyle` (default: the widget's
    background and axes) also recolours what the plot draws itself (bars, labels, lines)."""
    if restyle is None:
        assert isinstance(widget, pg.PlotWidget | pg.GraphicsLayoutWidget)
        plot = widget

        def restyle() -> None:
            style_plot_widget(plot)

    restyle()
    _ThemeWatch(widget, restyle)
