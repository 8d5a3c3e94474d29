"""File > Import > GQA scene graphs…: the scene-graph JSON and the images folder, with the importer's
filters as fields (the fields of `GQAImportSpec`, what `mfv import gqa` takes), run as a background
job of the queue; then what was kept and why the rest was dropped, in the importer's own words
(`GQAReport.lines`), as the CLI prints it. Built on first use."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.errors import SpecError
from mfv_desktop.import_specs import GQAImportSpec, gqa_relation_name
from mfv_desktop.scenes.importers import ANCHOR_RULES, GQA_RELATIONS, GQAReport
from mfv_desktop.ui.shell.dialogs import plural

#: queues an import: (spec, on_done with the result, on_failed with the message) -> the job, None if refused
Submit = Callable[[GQAImportSpec, Callable[[dict[str, Any]], None], Callable[[str], None]], object]


def _text(text: str) -> str:
    """Plain text in a rich-text label."""
    return html.escape(text, quote=False)


def _pair(parent: QWidget, low: QWidget, high: QWidget, after: str = "") -> QWidget:
    row = QWidget(parent)
    line = QHBoxLayout(row)
    line.setContentsMargins(0, 0, 0, 0)
    line.addWidget(low)
    line.addWidget(QLabel("to", row))
    line.addWidget(high)
    if after:
        line.addWidget(QLabel(after, row))
    line.addStretch(1)
    return row


def _count(parent: QWidget, value: int, top: int = 10_000) -> QSpinBox:
    box = QSpinBox(parent)
    box.setRange(0, top)
    box.setValue(value)
    return box


class GQAImportDialog(QDialog):
    """The fields of a GQA import, an Import button that queues it, and its report when it is done."""

    def __init__(self, submit: Submit, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.submit = submit
        self.setWindowTitle("Import GQA scene graphs")
        d = GQAImportSpec()
        form = QFormLayout()
        self.scene_graphs = QLineEdit(self)
        self.scene_graphs.setPlaceholderText("e.g. train_sceneGraphs.json")
        self.images = QLineEdit(self)
        self.images.setPlaceholderText("the folder of <image_id>.jpg")
        form.addRow("Scene graphs", self._browse(self.scene_graphs, folder=False))
        form.addRow("Images folder", self._browse(self.images, folder=True))
        self.dataset = QLineEdit(d.dataset, self)
        form.addRow("Data set", self.dataset)
        self.min_area, self.max_area = (self._percent(v) for v in (d.min_area, d.max_area))
        form.addRow("Object size", _pair(self, self.min_area, self.max_area, "of the image"))
        self.relations = QListWidget(self)
        for predicate in GQA_RELATIONS:
            item = QListWidgetItem(f"{predicate}  →  {gqa_relation_name(predicate)}", self.relations)
            item.setData(Qt.ItemDataRole.UserRole, predicate)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if predicate in d.relations else Qt.CheckState.Unchecked)
        rows = self.relations.sizeHintForRow(0) * len(GQA_RELATIONS) + 2 * self.relations.frameWidth() + 2
        self.relations.setFixedHeight(rows)  # every relation in view: no scrolling in a list of seven
        form.addRow("Relations", self.relations)
        self.other_relations = QLineEdit(self)
        self.other_relations.setPlaceholderText("more GQA relations, comma-separated, e.g. on, holding")
        form.addRow("", self.other_relations)
        self.anchor = QComboBox(self)
        for rule, text in ANCHOR_RULES.items():
            self.anchor.addItem(f"{rule}: {text}", rule)
        self.anchor.setCurrentIndex(list(ANCHOR_RULES).index(d.anchor))
        self.anchor.setToolTip("which object is a scene's anchor, among those with a relation to exactly one object")
        form.addRow("Anchor", self.anchor)
        self.min_objects, self.max_objects = _count(self, d.min_objects), _count(self, d.max_objects)
        form.addRow("Objects per scene", _pair(self, self.min_objects, self.max_objects))
        self.min_relations, self.max_relations = _count(self, d.min_relations), _count(self, d.max_relations)
        form.addRow("Relations per scene", _pair(self, self.min_relations, self.max_relations))
        self.max_same_name = _count(self, d.max_same_name, 100)
        self.max_same_name.setMinimum(1)
        form.addRow("Objects of one name, at most", self.max_same_name)
        self.one_object = QCheckBox("drop a scene where an object has one relation to several objects", self)
        self.one_object.setChecked(d.one_object_per_predicate)
        self.word_names = QCheckBox("drop objects whose name is not one prompt word", self)
        self.word_names.setChecked(d.word_names_only)
        form.addRow("", self.one_object)
        form.addRow("", self.word_names)
        #: what happened: nothing yet, importing, the importer's report, or what is wrong
        self.summary = QLabel("Choose the scene graphs and their images, then Import.", self)
        self.summary.setWordWrap(True)
        self.summary.setMinimumWidth(460)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.setObjectName("gqa-summary")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.import_button = self.buttons.addButton("Import", QDialogButtonBox.ButtonRole.ActionRole)
        self.import_button.setDefault(True)
        self.import_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addLayout(form)
        column.addWidget(self.summary)
        column.addWidget(self.buttons)
        #: the import's result (with its report), once done
        self.result_: dict[str, Any] | None = None

    def _percent(self, fraction: float) -> QDoubleSpinBox:
        box = QDoubleSpinBox(self)
        box.setRange(0, 100)
        box.setDecimals(1)
        box.setSuffix(" %")
        box.setValue(100 * fraction)
        return box

    def _browse(self, edit: QLineEdit, folder: bool) -> QWidget:
        row = QWidget(self)
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(edit, 1)
        button = QPushButton("Browse…", row)

        def ask() -> None:
            if folder:
                path = QFileDialog.getExistingDirectory(self, "The folder of GQA images", edit.text())
            else:
                path, _ = QFileDialog.getOpenFileName(self, "GQA scene graphs", edit.text(), "JSON (*.json)")
            if path:
                edit.setText(path)

        button.clicked.connect(ask)
        line.addWidget(button)
        return row

    def spec(self) -> GQAImportSpec:
        """The import the fields describe (validated: SpecError names what is wrong)."""
        checked = [
            str(self.relations.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.relations.count())
            if self.relations.item(i).checkState() == Qt.CheckState.Checked
        ]
        more = [p.strip() for p in self.other_relations.text().split(",") if p.strip()]
        spec = GQAImportSpec(
            scene_graphs=self.scene_graphs.text().strip(),
            images=self.images.text().strip(),
            dataset=self.dataset.text().strip() or "gqa",
            min_area=round(self.min_area.value() / 100, 6),
            max_area=round(self.max_area.value() / 100, 6),
            relations=tuple(dict.fromkeys(checked + more)),
            anchor=str(self.anchor.currentData()),
            min_objects=self.min_objects.value(),
            max_objects=self.max_objects.value(),
            min_relations=self.min_relations.value(),
            max_relations=self.max_relations.value(),
            max_same_name=self.max_same_name.value(),
            one_object_per_predicate=self.one_object.isChecked(),
            word_names_only=self.word_names.isChecked(),
        )
        if not spec.relations:
            raise SpecError("check at least one relation")
        spec.validate()
        return spec

    def start(self) -> None:
        try:
            spec = self.spec()
        except SpecError as e:
            return self._say(str(e), error=True)
        self.result_ = None
        if self.submit(spec, self.show_report, self.failed) is None:
            return self._say("the store is open read-only", error=True)
        self.import_button.setEnabled(False)
        self._say(f"Importing {spec.scene_graphs} … (the Jobs panel shows its progress)")

    def show_report(self, result: dict[str, Any]) -> None:
        self.result_ = result
        self.import_button.setEnabled(True)
        lines = GQAReport.from_dict(result["report"]).lines()
        added = f"{plural(result['added'], 'scene')} added to the data set {result['dataset']!r}" + (
            f" ({result['skipped']} were there already)" if result.get("skipped") else ""
        )
        rest = "".join(
            f"<br>&nbsp;&nbsp;&nbsp;<span style='color:gray'>{_text(line.strip())}</span>"
            if line.startswith(" ")
            else f"<br>{_text(line)}"
            for line in lines[1:]
        )
        self.summary.setText(f"<b>{_text(lines[0])}</b>{rest}<br><br>{_text(added)}")
        self._fit()

    def failed(self, message: str) -> None:
        self.import_button.setEnabled(True)
        self._say(f"The import failed: {message}", error=True)

    def _fit(self) -> None:
        """Grow to show the whole summary (a window does not follow its label's wrapped height by itself)."""
        layout = self.layout()
        if layout is not None:
            layout.activate()
        need = max(self.heightForWidth(self.width()), self.minimumSizeHint().height())
        if self.height() < need:
            self.resize(self.width(), need)

    def _say(self, text: str, error: bool = False) -> None:
        colour = "#b00020" if error else ""
        self.summary.setText(f"<span style='color:{colour}'>{_text(text)}</span>" if colour else _text(text))
        self._fit()
