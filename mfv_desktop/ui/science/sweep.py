"""The layer sweep tab: accuracy per injection layer against the zero-shot and ICL baselines, and the
vector's evaluation and fine-tuning on a data set. The jobs are the engine's (SweepSpec, EvaluateSpec,
FinetuneSpec), queued through the app context and recorded in the store like `mfv --store`."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QComboBox, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget

from mfv_desktop.progress import Progress
from mfv_desktop.store import runs as run_repo
from mfv_desktop.store import vectors as vrepo
from mfv_desktop.ui.science.aie import dataset_combo, row_of
from mfv_desktop.ui.science.prompt_hooks import prompts_button, show_prompts
from mfv_desktop.ui.shell.context import AppContext


class SweepPanel(QWidget):
    """Accuracy with a vector injected at each layer (one curve per strength), with the zero-shot and
    ICL accuracy on the same scenes as horizontal lines."""

    COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
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
        self.preset.setToolTip(
            "paper: Adam lr 1e-3, 20 epochs, cosine, batch 16; authors' code: lr 1e-2, 10 epochs, batch 1"
        )
        self.finetune_button = QPushButton("Fine-tune")
        self.finetune_button.setToolTip(
            "train the vector alone (the model is frozen) on zero-shot prompts of the "
            "data set; the best epoch on held-out scenes is kept as a new vector"
        )
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("0-shot, 4-shot ICL and 0-shot + vector accuracy on the data set")
        self.report = QLabel()
        self.report.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        rows = (
            row_of(QLabel("Vector"), self.vector, QLabel("Data set"), self.dataset),
            row_of(
                QLabel("strengths"),
                self.strengths,
                QLabel("prompts"),
                self.n_prompts,
                QLabel("ICL K"),
                self.icl_k,
                self.run_button,
            ),
            row_of(QLabel("Show"), self.results, self.status),
        )
        layout = QVBoxLayout(self)
        for row in rows:
            layout.addLayout(row)
        layout.addWidget(self.plot, 1)
        layout.addLayout(
            row_of(
                QLabel("The vector on this data set:"),
                self.evaluate_button,
                QLabel("preset"),
                self.preset,
                self.finetune_button,
            )
        )
        layout.addWidget(self.report)
        self.finetune_button.clicked.connect(self.finetune)
        self.evaluate_button.clicked.connect(self.evaluate)
        self.run_button.clicked.connect(self.run_sweep)
        self.results.activated.connect(lambda _: self.show_run(self.results.currentData()))
        ctx.vectorsChanged.connect(self.refresh)
        self.shown: dict[str, Any] | None = None
        self._prompt_hooks()
        self.refresh()

    def refresh(self) -> None:
        dataset_combo(self.ctx, self.dataset)
        keep = self.vector.currentData()
        self.vector.clear()
        for v in vrepo.list_vectors(self.ctx.store):
            self.vector.addItem(f"{v['id']}: {v['label']} ({v['relation']}, layer {v['layer']})", v["id"])
        past = [(r.id, r.result) for r in run_repo.list_runs(self.ctx.store, kind="sweep", status="done") if r.result]
        if keep is not None and self.vector.findData(keep) >= 0:
            self.vector.setCurrentIndex(self.vector.findData(keep))
        self.results.clear()
        for run_id, result in past:
            self.results.addItem(
                f"run {run_id}: {result.get('relation', '')}, best layer {result.get('best_layer')} "
                f"({result.get('best_accuracy', 0):.2f})",
                run_id,
            )

    def show_run(self, run_id: int | None) -> None:
        if run_id is None:
            return
        result = run_repo.get_run(self.ctx.store, run_id).result
        if result is not None:
            self.draw(result)

    def draw(self, result: dict[str, Any]) -> None:
        """Curves of accuracy per layer for each strength; baselines as dashed lines (partial results too)."""
        self.shown = result
        self.plot.clear()
        layers, strengths, acc = result.get("layers", []), result.get("strengths", []), result.get("accuracy", [])
        for i, (s, row) in enumerate(zip(strengths, acc)):
            colour = self.COLOURS[i % len(self.COLOURS)]
            self.plot.plot(
                layers[: len(row)],
                row,
                pen=pg.mkPen(colour, width=2),
                symbol="o",
                symbolBrush=colour,
                symbolPen=colour,
                name=f"+ vector × {s:g}",
            )
        styles = {"0-shot": ("#555555", Qt.PenStyle.DashLine)}
        for name, value in (result.get("baselines") or {}).items():
            colour, style = styles.get(name, ("#e377c2", Qt.PenStyle.DotLine))
            line = pg.InfiniteLine(
                pos=value,
                angle=0,
                pen=pg.mkPen(colour, width=2, style=style),
                label=f"{name} {value:.2f}",
                labelOpts={"position": 0.92, "color": colour},
            )
            self.plot.addItem(line)
            self.plot.plot([], [], pen=pg.mkPen(colour, width=2, style=style), name=name)
        if layers:
            self.plot.setXRange(min(layers) - 0.3, max(layers) + 0.3)
            self.plot.getAxis("bottom").setTicks([[(layer, str(layer)) for layer in layers]])
        if "best_layer" in result:
            self.status.setText(
                f"{result.get('relation', '')}: best layer {result['best_layer']} × "
                f"{result['best_strength']:g} = {result['best_accuracy']:.3f}"
            )

    def run_sweep(self):
        from mfv_desktop.jobs import SweepSpec

        inputs = self._inputs("a layer sweep")
        if inputs is None:
            return None
        try:
            strengths = tuple(float(x) for x in self.strengths.text().replace(",", " ").split())
        except ValueError:
            self.ctx.notify(f"strengths {self.strengths.text()!r}: give numbers, e.g. 1, 2, 4", True)
            return None
        spec = SweepSpec(
            vector=inputs[0],
            scenes=inputs[1],
            n_prompts=self.n_prompts.value(),
            strengths=strengths or (1.0,),
            ks=(self.icl_k.value(),) if self.icl_k.value() else (),
            model=self.ctx.model_ref(),
        )
        self.plot.clear()
        return self.ctx.submit_spec(spec, "layer sweep", on_done=self._done, on_progress=lambda p: self._progress(p))

    def _inputs(self, what: str) -> tuple[str, str] | None:
        if self.vector.currentData() is None or self.dataset.currentData() is None:
            self.ctx.notify(f"{what} needs a vector (build one on the AIE tab) and a data set", True)
            return None
        return f"vector:{self.vector.currentData()}", f"dataset:{self.dataset.currentData()}"

    def evaluate(self):
        from mfv_desktop.jobs import EvaluateSpec

        inputs = self._inputs("evaluating")
        if inputs is None:
            return None
        relation = vrepo.get_vector(self.ctx.store, self.vector.currentData())["relation"]
        spec = EvaluateSpec(
            vectors=(inputs[0],),
            scenes=inputs[1],
            relations=(relation,),
            ks=(0, 4),
            n_prompts=self.n_prompts.value(),
            model=self.ctx.model_ref(),
        )
        self.report.setText("evaluating…")
        return self.ctx.submit_spec(
            spec, "evaluate", on_done=self._evaluated, on_progress=lambda p: self.report.setText(p.message)
        )

    def _evaluated(self, result: tuple[int, dict]) -> None:
        self.report.setText(
            "accuracy: "
            + " · ".join(f"{r['condition']} {r['accuracy']:.3f}" for r in result[1]["rows"])
            + f" (n = {result[1]['rows'][0]['n']})"
        )

    def finetune(self):
        from mfv_desktop.jobs import FinetuneSpec

        inputs = self._inputs("fine-tuning")
        if inputs is None:
            return None
        spec = FinetuneSpec(
            vector=inputs[0],
            scenes=inputs[1],
            preset=self.preset.currentText(),
            n_prompts=self.n_prompts.value(),
            model=self.ctx.model_ref(),
        )
        self.report.setText("fine-tuning…")
        return self.ctx.submit_spec(spec, "fine-tune", on_done=self._finetuned, on_progress=self._epoch)

    def _epoch(self, p: Progress) -> None:
        if "val_accuracy" in p.partial:
            self.report.setText(
                f"{p.message}: validation accuracy {p.partial['val_accuracy']:.3f}, "
                f"loss {p.partial['val_loss']:.4f} (best: epoch {p.partial.get('best_epoch')})"
            )

    def _finetuned(self, result: tuple[int, dict]) -> None:
        r = result[1]
        self.ctx.vectorsChanged.emit()
        self.report.setText(
            f"fine-tuned vector saved (Vectors panel): validation accuracy {r['start_val_accuracy']:.3f}"
            f" -> {r['val_accuracy']:.3f}, best epoch {r['best_epoch']} "
            f"({r['n_train']} training, {r['n_val']} validation prompts)"
        )

    def _progress(self, p: Progress) -> None:
        self.status.setText(p.message)
        if "accuracy" in p.partial:
            self.draw({k: p.partial[k] for k in ("layers", "strengths", "accuracy")})

    def _done(self, result: tuple[int, dict]) -> None:
        run_id, summary = result
        self.refresh()
        self.results.setCurrentIndex(max(self.results.findData(run_id), 0))
        self.draw(summary)

    # -- the prompts behind the curves (the viewer is built on first use) --------------------------
    def _prompt_hooks(self) -> None:
        self.prompts_button = prompts_button(
            self.results, "the prompts of the shown run; click a point of a curve for the prompts behind it"
        )
        self.prompts_button.clicked.connect(lambda: show_prompts(self.ctx, self.results.currentData(), parent=self))
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.setToolTip("click a point to see the prompts behind it")

    def point_at(self, scene_pos, reach: float = 10.0) -> tuple[int, float] | None:
        """The (layer, strength) of the drawn point nearest a scene position, within `reach` pixels."""
        vb = self.plot.getPlotItem().vb
        if self.shown is None or not vb.sceneBoundingRect().contains(scene_pos):
            return None
        layers, strengths = self.shown.get("layers", []), self.shown.get("strengths", [])
        best: tuple[float, int, float] | None = None
        for s, row in zip(strengths, self.shown.get("accuracy", [])):
            for layer, acc in zip(layers, row):
                d = (vb.mapViewToScene(QPointF(layer, acc)) - scene_pos).manhattanLength()
                if d <= reach and (best is None or d < best[0]):
                    best = (d, int(layer), float(s))
        return None if best is None else (best[1], best[2])

    def _clicked(self, event) -> None:
        at = self.point_at(event.scenePos())
        if at is not None and self.shown is not None:
            layer, s = at
            show_prompts(
                self.ctx, self.results.currentData(), self.shown.get("relation"), f"L{layer} ×{s:g}", parent=self
            )
