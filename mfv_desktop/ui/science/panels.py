"""The science tabs: causal mediation (AIE heatmaps that fill in as the job runs, two runs side by
side on one colour range, vectors built from the heads picked on a map) and the layer sweep (accuracy
per injection layer against the zero-shot and ICL baselines). The jobs are the engine's (AIESpec,
ExtractSpec, SweepSpec), queued through the window and recorded in the store like `mfv --store`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGridLayout, QHBoxLayout, QLabel, QLineEdit,
    QPushButton, QScrollArea, QSpinBox, QVBoxLayout, QWidget,
)
from sqlalchemy import select

from mfv_desktop.progress import Progress
from mfv_desktop.scenes import BASE_RELATIONS
from mfv_desktop.store import StoreError
from mfv_desktop.store import models as m
from mfv_desktop.store import scenes as repo

from mfv_desktop.ui.science.heatmap import AIEHeatmap

log = logging.getLogger("mfv_desktop")

if TYPE_CHECKING:
    from mfv_desktop.ui.shell.main_window import MainWindow


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    row.addStretch(1)
    return row


def _dataset_combo(window: "MainWindow", combo: QComboBox) -> None:
    """Fill a combo with the store's data sets (keeping the choice), largest first."""
    current = combo.currentData()
    combo.clear()
    for d in sorted(repo.datasets(window.store), key=lambda d: -d["n_scenes"]):
        if d["n_scenes"]:
            combo.addItem(f"{d['name']} ({d['n_scenes']} scenes)", d["name"])
    if current is not None and combo.findData(current) >= 0:
        combo.setCurrentIndex(combo.findData(current))


class AIEPanel(QWidget):
    """Run AIE on a data set, watch one heatmap per relation fill in, compare with an earlier run, and
    build a function vector from the heads selected on a map."""

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window_ = window
        self.maps: dict[str, AIEHeatmap] = {}
        self.other_maps: dict[str, AIEHeatmap] = {}
        self.shown_run: int | None = None  # the run whose maps are on the left
        self.live_run: int | None = None  # the AIE job running now
        self.active: str | None = None  # the relation whose map was clicked last

        self.dataset = QComboBox()
        self.relation_boxes = {r: QCheckBox(r) for r in BASE_RELATIONS}
        for box in self.relation_boxes.values():
            box.setChecked(True)
        self.n_prompts = QSpinBox(minimum=4, maximum=5000, value=100)
        self.k = QSpinBox(minimum=1, maximum=16, value=4)
        self.method = QComboBox()
        self.method.addItems(["fast", "reference"])
        self.matched_only = QCheckBox("matched only")
        self.matched_only.setChecked(True)
        self.matched_only.setToolTip("the authors' convention: average each head's indirect effect over the "
                                     "corrupted prompts whose clean prompt the model answers correctly (over all "
                                     "of them when it answers none); unchecked: over every corrupted prompt")
        self.run_button = QPushButton("Run AIE")
        self.run_button.setToolTip("mean head activations and the average indirect effect of every head, "
                                   "per relation (the engine's `mfv aie`)")
        self.results = QComboBox()
        self.compare = QComboBox()
        for combo in (self.results, self.compare):
            combo.setMinimumContentsLength(22)
        self.top_k = QSpinBox(minimum=1, maximum=200, value=10)
        self.selection = QLabel("click heads on a map (or drag a rectangle) to select them")
        self.selection.setWordWrap(True)
        self.label = QLineEdit()
        self.label.setPlaceholderText("vector label (default: relation and heads)")
        self.layer = QSpinBox(minimum=-1, maximum=999, value=-1)
        self.layer.setSpecialValueText("model default")
        self.layer.setToolTip("the layer the vector is added at when applied (the Layer sweep tab finds the best)")
        self.strength = QDoubleSpinBox(minimum=0.1, maximum=50.0, value=1.0, singleStep=0.5)
        self.strength.setToolTip("how many times the vector is added (the Layer sweep tab compares strengths)")
        self.top_button = QPushButton("Select top K")
        self.build_button = QPushButton("Build vector from selection")
        self.export_button = QPushButton("Export map…")
        self.status = QLabel()

        run_row = _row(QLabel("Data set"), self.dataset, *self.relation_boxes.values())
        options_row = _row(QLabel("prompts per relation"), self.n_prompts, QLabel("K"), self.k, self.method,
                           self.matched_only, self.run_button)
        show_row = _row(QLabel("Show"), self.results, QLabel("beside"), self.compare)
        options_row.addWidget(self.status, 1)
        build = QFormLayout()
        build.addRow("Top K", self.top_k)
        build.addRow(self.top_button)
        build.addRow(self.selection)
        build.addRow("Label", self.label)
        build.addRow("Layer", self.layer)
        build.addRow("Strength", self.strength)
        build.addRow(self.build_button)
        build.addRow(self.export_button)
        side = QWidget()
        side.setLayout(build)
        side.setMaximumWidth(260)
        self.grid = QGridLayout()
        grid_host = QWidget()
        grid_host.setLayout(self.grid)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(grid_host)
        body = QHBoxLayout()
        body.addWidget(scroll, 1)
        body.addWidget(side)
        layout = QVBoxLayout(self)
        for row in (run_row, options_row, show_row):
            layout.addLayout(row)
        layout.addLayout(body, 1)

        self.run_button.clicked.connect(self.run_aie)
        self.results.activated.connect(lambda _: self.show_run(self.results.currentData()))
        self.compare.activated.connect(lambda _: self.show_run(self.shown_run))
        self.top_button.clicked.connect(self.select_top)
        self.build_button.clicked.connect(self.build_vector)
        self.export_button.clicked.connect(self.ask_export)
        self.top_k.valueChanged.connect(self._set_top_k)
        self.ask_export_path = lambda: QFileDialog.getSaveFileName(
            self, "Export the AIE map", f"aie-{self.active or 'map'}.png", "PNG (*.png);;CSV (*.csv);;NumPy (*.npy)")[0]
        self.refresh()

    # -- what is in the store ----------------------------------------------------------------------
    def aie_runs(self) -> list[dict[str, Any]]:
        """Runs with AIE results, newest first: id, relations, model, whether the AIE is over matched
        prompts only (as recorded), the corrupted prompts it averages over and those there were (summed
        over relations), and per relation how it was averaged."""
        from mfv_desktop.jobs.science import averaging_text

        with self.window_.store.session() as s:
            rows = s.execute(select(m.AIEResultRow.run_id, m.AIEResultRow.relation, m.AIEResultRow.model_id,
                                    m.AIEResultRow.n_prompts, m.AIEResultRow.provenance)
                             .where(m.AIEResultRow.run_id.is_not(None)).order_by(m.AIEResultRow.id)).all()
        runs: dict[int, dict[str, Any]] = {}
        for run_id, rel, model_id, n, prov in rows:
            r = runs.setdefault(run_id, {"id": run_id, "relations": [], "model_id": model_id, "n_prompts": 0,
                                         "n_corrupted": 0, "matched_only": bool(prov.get("matched_only")),
                                         "averaged_over": []})
            r["relations"].append(rel)
            r["n_prompts"] += n
            r["n_corrupted"] += prov.get("n_corrupted", n)
            r["averaged_over"].append(f"{rel}: {averaging_text({**prov, 'n_prompts': n})}")
        return sorted(runs.values(), key=lambda r: -r["id"])

    def load_aie(self, run_id: int) -> dict[str, tuple[np.ndarray, int]]:
        """relation -> (AIE matrix, prompts) of a finished run."""
        with self.window_.store.session() as s:
            rows = s.scalars(select(m.AIEResultRow).where(m.AIEResultRow.run_id == run_id)
                             .order_by(m.AIEResultRow.id)).all()
            found = [(r.relation, r.aie_artifact, r.n_prompts) for r in rows]
        return {rel: (self.window_.store.artifacts.get(digest)["aie"], n) for rel, digest, n in found}

    def refresh(self) -> None:
        _dataset_combo(self.window_, self.dataset)
        for combo, none in ((self.results, None), (self.compare, "nothing")):
            keep = combo.currentData()
            combo.clear()
            if none:
                combo.addItem(none, None)
            for r in self.aie_runs():
                prompts = (f"matched-only · {r['n_prompts']} of {r['n_corrupted']} prompts" if r["matched_only"]
                           else f"all corrupted · {r['n_prompts']} prompts")
                combo.addItem(f"run {r['id']}: {', '.join(r['relations'])} · {prompts} · {r['model_id']}", r["id"])
                combo.setItemData(combo.count() - 1, "\n".join(r["averaged_over"]), Qt.ItemDataRole.ToolTipRole)
            if keep is not None and combo.findData(keep) >= 0:
                combo.setCurrentIndex(combo.findData(keep))
        if self.shown_run is None and self.results.count():
            self.show_run(self.results.currentData())

    # -- the maps --------------------------------------------------------------------------------
    def _layout_maps(self, relations: list[str], beside: bool) -> None:
        """One map per relation (two per row), or, when comparing, a row per relation: this run | the other."""
        for mp in [*self.maps.values(), *self.other_maps.values()]:
            self.grid.removeWidget(mp)
            mp.deleteLater()
        self.maps, self.other_maps = {}, {}
        for i, rel in enumerate(relations):
            mp = self._new_map(rel)
            mp.selection_changed.connect(lambda heads, rel=rel: self._selected(rel, heads))
            self.maps[rel] = mp
            if beside:
                other = self._new_map(f"{rel} (run {self.compare.currentData()})")
                self.other_maps[rel] = other
                self.grid.addWidget(mp, i, 0)
                self.grid.addWidget(other, i, 1)
            else:
                self.grid.addWidget(mp, i // 2, i % 2)

    def _new_map(self, title: str) -> AIEHeatmap:
        mp = AIEHeatmap(title, top_k=self.top_k.value())
        mp.setMinimumSize(300, 260)
        return mp

    def show_run(self, run_id: int | None) -> None:
        """A finished run's maps; beside them (one colour range per relation) the run picked to compare."""
        if run_id is None:
            return
        self.shown_run = run_id
        other_id = self.compare.currentData()
        try:
            mine = self.load_aie(run_id)
            other = self.load_aie(other_id) if other_id is not None and other_id != run_id else {}
        except StoreError as e:  # a damaged or missing artifact: say which, and what to do
            log.error("AIE run %s cannot be shown: %s", run_id, e)
            self.status.setText(f"run {run_id} cannot be shown: {e}")
            self.window_.notify(f"run {run_id} cannot be shown: {e}", error=True)
            return
        self._layout_maps(list(mine), beside=bool(other))
        if mine:
            self.layer.setMaximum(next(iter(mine.values()))[0].shape[0] - 1)
        for rel, (aie, n) in mine.items():
            levels = None
            if rel in other:
                both = np.concatenate([aie.ravel(), other[rel][0].ravel()])
                levels = (float(min(both.min(), 0.0)), float(max(both.max(), 1e-9)))
                self.other_maps[rel].set_aie(other[rel][0], other[rel][1], levels)
                self.maps[rel].bar.hide()  # one colour bar for the pair: the right map's
            self.maps[rel].set_aie(aie, n, levels)
        self.active = next(iter(mine), None)
        self.status.setText(f"run {run_id}" + (f" beside run {other_id}" if other else ""))

    def _set_top_k(self, k: int) -> None:
        for mp in [*self.maps.values(), *self.other_maps.values()]:
            mp.top_k = k
            if mp.aie is not None:
                mp.set_aie(mp.aie, levels=tuple(mp.bar.levels()))

    def _selected(self, rel: str, heads: list) -> None:
        self.active = rel
        self.selection.setText(f"{rel}: {len(heads)} heads " + ", ".join(f"{a}:{b}" for a, b in heads[:24])
                               + (" …" if len(heads) > 24 else ""))

    # -- running ---------------------------------------------------------------------------------
    def spec(self):
        from mfv_desktop.jobs import AIESpec

        relations = tuple(r for r, box in self.relation_boxes.items() if box.isChecked())
        return AIESpec(scenes=f"dataset:{self.dataset.currentData()}", relations=relations,
                       n_prompts=self.n_prompts.value(), k=self.k.value(), method=self.method.currentText(),
                       matched_only=self.matched_only.isChecked(), model=self.window_.model_ref())

    def run_aie(self):
        if self.dataset.currentData() is None:
            self.window_.notify("there are no scenes to run AIE on: add the sample data set or import images", True)
            return None
        spec = self.spec()
        if not spec.relations:
            self.window_.notify("pick at least one relation", True)
            return None
        self.live_run, self.shown_run = None, None
        self._layout_maps(list(spec.relations), beside=False)
        self.status.setText("AIE queued")
        return self.window_.submit_spec(spec, "AIE", on_done=self._aie_done, on_progress=self._aie_progress,
                                        on_failed=lambda msg: self.status.setText(f"AIE failed: {msg}"))

    def _aie_progress(self, p: Progress) -> None:
        """Partial results: the running sums of the relation being measured, drawn as they come."""
        rel = p.partial.get("relation")
        self.status.setText(p.message)
        if rel in self.maps and "ie_sum" in p.partial and p.partial.get("n_prompts"):
            n = int(p.partial["n_prompts"])
            self.maps[rel].set_aie(np.asarray(p.partial["ie_sum"]) / n, n)

    def _aie_done(self, result: tuple[int, dict]) -> None:
        run_id, _ = result
        self.refresh()
        self.results.setCurrentIndex(self.results.findData(run_id))
        self.show_run(run_id)

    def select_top(self) -> None:
        mp = self.maps.get(self.active or "")
        if mp is not None:
            mp.select_top()

    def build_vector(self):
        """ExtractSpec on the shown run's AIE result of the active relation (read from the store,
        hash-checked) with the heads selected on its map; the vector goes to the store."""
        from mfv_desktop.jobs import ExtractSpec
        from mfv_desktop.jobs.io import aie_ref
        from mfv_desktop.store.results import find_aie_result

        mp = self.maps.get(self.active or "")
        if self.shown_run is None or mp is None or not mp.selected:
            self.window_.notify("select heads on a finished run's map first (click them, or Select top K)", True)
            return None
        aie_id = find_aie_result(self.window_.store, self.shown_run, self.active)
        if aie_id is None:
            self.window_.notify(f"run {self.shown_run} has no AIE result for '{self.active}'", True)
            return None
        spec = ExtractSpec(aie=aie_ref(aie_id), relation=self.active, heads=tuple(mp.selected),
                           label=self.label.text().strip(), layer=None if self.layer.value() < 0 else self.layer.value(),
                           strength=self.strength.value(), model=self.window_.model_ref())
        return self.window_.submit_spec(spec, f"vector: {self.active}", on_done=self._built)

    def _built(self, result: tuple[int, dict]) -> None:
        _, summary = result
        self.window_.vectorsChanged.emit()
        self.window_.notify(f"vector saved: {len(summary['heads'])} heads, norm {summary['norm']:.1f}, "
                            f"layer {summary['layer']} (in the Vectors panel)")

    def ask_export(self) -> None:
        mp = self.maps.get(self.active or "")
        if mp is None or mp.aie is None:
            return self.window_.notify("there is no map to export yet", True)
        path = self.ask_export_path()
        if path:
            try:
                mp.export(path)
            except (OSError, ValueError) as e:
                self.window_.notify(str(e), True)


class SweepPanel(QWidget):
    """Accuracy with a vector injected at each layer (one curve per strength), with the zero-shot and
    ICL accuracy on the same scenes as horizontal lines."""

    COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")

    def __init__(self, window: "MainWindow") -> None:
        super().__init__(window)
        self.window_ = window
        self.vector = QComboBox()
        self.vector.setMinimumContentsLength(24)
        self.dataset = QComboBox()
        self.dataset.setMinimumContentsLength(16)
        self.strengths = QLineEdit("1, 2, 4")
        self.n_prompts = QSpinBox(minimum=4, maximum=5000, value=100)
        self.icl_k = QSpinBox(minimum=0, maximum=16, value=4)
        self.icl_k.setSpecialValueText("no ICL line")
        self.run_button = QPushButton("Run layer sweep")
        self.results = QComboBox()
        self.results.setMinimumContentsLength(30)
        self.status = QLabel()
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.setLabel("bottom", "injection layer")
        self.plot.setLabel("left", "zero-shot accuracy with the vector")
        self.plot.setYRange(0, 1.02)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.addLegend(offset=(10, -10), labelTextColor="#222222", brush=pg.mkBrush(255, 255, 255, 220))
        self.preset = QComboBox()
        self.preset.addItems(["paper", "authors"])
        self.preset.setToolTip("paper: Adam lr 1e-3, 20 epochs, cosine, batch 16; authors' code: lr 1e-2, 10 epochs, "
                               "batch 1")
        self.finetune_button = QPushButton("Fine-tune")
        self.finetune_button.setToolTip("train the vector alone (the model is frozen) on zero-shot prompts of the "
                                        "data set; the best epoch on held-out scenes is kept as a new vector")
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("0-shot, 4-shot ICL and 0-shot + vector accuracy on the data set")
        self.report = QLabel()
        self.report.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rows = (_row(QLabel("Vector"), self.vector, QLabel("Data set"), self.dataset),
                _row(QLabel("strengths"), self.strengths, QLabel("prompts"), self.n_prompts, QLabel("ICL K"),
                     self.icl_k, self.run_button),
                _row(QLabel("Show"), self.results, self.status))
        layout = QVBoxLayout(self)
        for row in rows:
            layout.addLayout(row)
        layout.addWidget(self.plot, 1)
        layout.addLayout(_row(QLabel("The vector on this data set:"), self.evaluate_button, QLabel("preset"),
                              self.preset, self.finetune_button))
        layout.addWidget(self.report)
        self.finetune_button.clicked.connect(self.finetune)
        self.evaluate_button.clicked.connect(self.evaluate)
        self.run_button.clicked.connect(self.run_sweep)
        self.results.activated.connect(lambda _: self.show_run(self.results.currentData()))
        window.vectorsChanged.connect(self.refresh)
        self.shown: dict[str, Any] | None = None
        self.refresh()

    def refresh(self) -> None:
        _dataset_combo(self.window_, self.dataset)
        keep = self.vector.currentData()
        self.vector.clear()
        with self.window_.store.session() as s:
            for v in s.scalars(select(m.VectorRow).order_by(m.VectorRow.id.desc())):
                self.vector.addItem(f"{v.id}: {v.label} ({v.relation}, layer {v.layer})", v.id)
            runs = s.scalars(select(m.Run).where(m.Run.kind == "sweep", m.Run.status == "done")
                             .order_by(m.Run.id.desc())).all()
            past = [(r.id, r.result) for r in runs if r.result]
        if keep is not None and self.vector.findData(keep) >= 0:
            self.vector.setCurrentIndex(self.vector.findData(keep))
        self.results.clear()
        for run_id, result in past:
            self.results.addItem(f"run {run_id}: {result.get('relation', '')}, best layer {result.get('best_layer')} "
                                 f"({result.get('best_accuracy', 0):.2f})", run_id)

    def show_run(self, run_id: int | None) -> None:
        if run_id is None:
            return
        with self.window_.store.session() as s:
            result = s.get(m.Run, run_id).result
        self.draw(result)

    def draw(self, result: dict[str, Any]) -> None:
        """Curves of accuracy per layer for each strength; baselines as dashed lines (partial results too)."""
        self.shown = result
        self.plot.clear()
        layers, strengths, acc = result.get("layers", []), result.get("strengths", []), result.get("accuracy", [])
        for i, (s, row) in enumerate(zip(strengths, acc)):
            colour = self.COLOURS[i % len(self.COLOURS)]
            self.plot.plot(layers[:len(row)], row, pen=pg.mkPen(colour, width=2), symbol="o", symbolBrush=colour,
                           symbolPen=colour, name=f"+ vector × {s:g}")
        styles = {"0-shot": ("#555555", Qt.PenStyle.DashLine)}
        for name, value in (result.get("baselines") or {}).items():
            colour, style = styles.get(name, ("#e377c2", Qt.PenStyle.DotLine))
            line = pg.InfiniteLine(pos=value, angle=0, pen=pg.mkPen(colour, width=2, style=style),
                                   label=f"{name} {value:.2f}", labelOpts={"position": 0.92, "color": colour})
            self.plot.addItem(line)
            self.plot.plot([], [], pen=pg.mkPen(colour, width=2, style=style), name=name)
        if layers:
            self.plot.setXRange(min(layers) - 0.3, max(layers) + 0.3)
            self.plot.getAxis("bottom").setTicks([[(layer, str(layer)) for layer in layers]])
        if "best_layer" in result:
            self.status.setText(f"{result.get('relation', '')}: best layer {result['best_layer']} × "
                                f"{result['best_strength']:g} = {result['best_accuracy']:.3f}")

    def run_sweep(self):
        from mfv_desktop.jobs import SweepSpec

        inputs = self._inputs("a layer sweep")
        if inputs is None:
            return None
        try:
            strengths = tuple(float(x) for x in self.strengths.text().replace(",", " ").split())
        except ValueError:
            self.window_.notify(f"strengths {self.strengths.text()!r}: give numbers, e.g. 1, 2, 4", True)
            return None
        spec = SweepSpec(vector=inputs[0], scenes=inputs[1], n_prompts=self.n_prompts.value(), strengths=strengths or (1.0,),
                         ks=(self.icl_k.value(),) if self.icl_k.value() else (), model=self.window_.model_ref())
        self.plot.clear()
        return self.window_.submit_spec(spec, "layer sweep", on_done=self._done,
                                        on_progress=lambda p: self._progress(p))

    def _inputs(self, what: str) -> tuple[str, str] | None:
        if self.vector.currentData() is None or self.dataset.currentData() is None:
            self.window_.notify(f"{what} needs a vector (build one on the AIE tab) and a data set", True)
            return None
        return f"vector:{self.vector.currentData()}", f"dataset:{self.dataset.currentData()}"

    def evaluate(self):
        from mfv_desktop.jobs import EvaluateSpec

        inputs = self._inputs("evaluating")
        if inputs is None:
            return None
        with self.window_.store.session() as s:
            relation = s.get(m.VectorRow, self.vector.currentData()).relation
        spec = EvaluateSpec(vectors=(inputs[0],), scenes=inputs[1], relations=(relation,), ks=(0, 4),
                            n_prompts=self.n_prompts.value(), model=self.window_.model_ref())
        self.report.setText("evaluating…")
        return self.window_.submit_spec(spec, "evaluate", on_done=self._evaluated,
                                        on_progress=lambda p: self.report.setText(p.message))

    def _evaluated(self, result: tuple[int, dict]) -> None:
        self.report.setText("accuracy: " + " · ".join(f"{r['condition']} {r['accuracy']:.3f}"
                                                      for r in result[1]["rows"]) + f" (n = {result[1]['rows'][0]['n']})")

    def finetune(self):
        from mfv_desktop.jobs import FinetuneSpec

        inputs = self._inputs("fine-tuning")
        if inputs is None:
            return None
        spec = FinetuneSpec(vector=inputs[0], scenes=inputs[1], preset=self.preset.currentText(),
                            n_prompts=self.n_prompts.value(), model=self.window_.model_ref())
        self.report.setText("fine-tuning…")
        return self.window_.submit_spec(spec, "fine-tune", on_done=self._finetuned, on_progress=self._epoch)

    def _epoch(self, p: Progress) -> None:
        if "val_accuracy" in p.partial:
            self.report.setText(f"{p.message}: validation accuracy {p.partial['val_accuracy']:.3f}, "
                                f"loss {p.partial['val_loss']:.4f} (best: epoch {p.partial.get('best_epoch')})")

    def _finetuned(self, result: tuple[int, dict]) -> None:
        r = result[1]
        self.window_.vectorsChanged.emit()
        self.report.setText(f"fine-tuned vector saved (Vectors panel): validation accuracy {r['start_val_accuracy']:.3f}"
                            f" -> {r['val_accuracy']:.3f}, best epoch {r['best_epoch']} "
                            f"({r['n_train']} training, {r['n_val']} validation prompts)")

    def _progress(self, p: Progress) -> None:
        self.status.setText(p.message)
        if "accuracy" in p.partial:
            self.draw({k: p.partial[k] for k in ("layers", "strengths", "accuracy")})

    def _done(self, result: tuple[int, dict]) -> None:
        run_id, summary = result
        self.refresh()
        self.results.setCurrentIndex(max(self.results.findData(run_id), 0))
        self.draw(summary)
