"""The layer sweep tab: accuracy per injection layer against the zero-shot and ICL baselines, and the
vector's evaluation and fine-tuning on a data set. The jobs are the engine's (SweepSpec, EvaluateSpec,
FinetuneSpec), queued through the app context and recorded in the store like `mfv --store`.

Each point shows its n and 95% Wilson interval (error bars, and in words under the mouse); the best
layer and strength are chosen by a stated rule (stats.BEST_RULE) and, or any clicked point, can be
made the vector's defaults (undoable). The tab shows the run it names: its curves, its vector and
data set, live while it runs and after a restart."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QVBoxLayout, QWidget

from mfv_desktop.progress import Progress
from mfv_desktop.stats import BEST_RULE, best_point, count_of, wilson_interval
from mfv_desktop.store import runs as run_repo
from mfv_desktop.store import vectors as vrepo
from mfv_desktop.ui.plot_theme import colours, follow_theme, style_plot_widget
from mfv_desktop.ui.science.aie import dataset_combo, row_of
from mfv_desktop.ui.science.prompt_hooks import prompts_button, show_prompts
from mfv_desktop.ui.science.sweep_points import SetVectorDefaults, point_text
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.shell.jobs import Job


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
        self.plot.setLabel("bottom", "injection layer")
        self.plot.setLabel("left", "zero-shot accuracy with the vector")
        self.plot.setYRange(0, 1.02)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.addLegend(offset=(10, -10))
        #: the point under the mouse, in words (also its tooltip)
        self.readout = QLabel("move over a point: its n and 95% interval; click it to choose it")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.best = QLabel()
        self.best.setWordWrap(True)
        self.best.setToolTip(f"the best point: {BEST_RULE}")
        self.use_button = QPushButton("Use this layer and strength")
        self.use_button.setToolTip(
            "make the chosen point (the best, or a clicked one) the vector's default layer and strength "
            "(Edit > Undo takes it back)"
        )
        self.use_button.setEnabled(False)
        #: the point "Use this layer and strength" sets: (layer, strength), the best one unless clicked
        self.chosen: tuple[int, float] | None = None
        self.shown_run: int | None = None  # the run whose curves are drawn
        self.live_job: Job | None = None  # the sweep job drawing into the plot now
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
        layout.addWidget(self.readout)
        best_row = QHBoxLayout()
        best_row.addWidget(self.use_button)
        best_row.addWidget(self.best, 1)  # the sentence takes the width
        layout.addLayout(best_row)
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
        self.use_button.clicked.connect(self.use_chosen)
        ctx.vectorsChanged.connect(self.refresh)
        ctx.jobs.changed.connect(self._job_changed)
        ctx.jobs.progressed.connect(self._job_progressed)
        self.shown: dict[str, Any] | None = None
        follow_theme(self.plot, self._restyle)
        self._prompt_hooks()
        self.refresh()

    def refresh(self) -> None:
        """Read the store again (vectors, data sets, finished sweeps); with nothing drawn yet, draw the
        newest sweep (after a restart the tab shows a run, not an empty plot)."""
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
            layer, strength = self.best_of(result)
            best_acc = self._accuracy_at(result, layer, strength)
            self.results.addItem(
                f"run {run_id}: {result.get('relation', '')}, best layer {layer} × {strength:g} ({best_acc:.2f})",
                run_id,
            )
        if self.shown_run is not None and self.results.findData(self.shown_run) >= 0:
            self.results.setCurrentIndex(self.results.findData(self.shown_run))
        elif self.shown is None and self.live_job is None and self.results.count():
            self.show_run(self.results.currentData())

    def show_run(self, run_id: int | None) -> None:
        """A finished sweep: its curves, and its vector and data set chosen above them."""
        if run_id is None:
            return
        run = run_repo.get_run(self.ctx.store, run_id)
        if run.result is None:
            return
        self.shown_run = run_id
        for combo, key, prefix in ((self.vector, "vector", "vector:"), (self.dataset, "scenes", "dataset:")):
            ref = str(run.spec.get(key, ""))
            if ref.startswith(prefix):
                value: Any = ref[len(prefix) :]
                value = int(value) if prefix == "vector:" and value.isdigit() else value
                if combo.findData(value) >= 0:
                    combo.setCurrentIndex(combo.findData(value))
        self.draw(run.result)

    @staticmethod
    def best_of(result: dict[str, Any]) -> tuple[int, float]:
        """The best (layer, strength) of a sweep by BEST_RULE (recomputed: older runs chose otherwise)."""
        return best_point(result.get("layers", []), result.get("strengths", []), result.get("accuracy", []))

    @staticmethod
    def _accuracy_at(result: dict[str, Any], layer: int, strength: float) -> float:
        try:
            i, j = list(result["strengths"]).index(strength), list(result["layers"]).index(layer)
            return float(result["accuracy"][i][j])
        except (KeyError, ValueError, IndexError):
            return 0.0

    @staticmethod
    def n_of(result: dict[str, Any]) -> int | None:
        """Prompts behind each point: the sweep's baseline n (the partial result's n while it runs)."""
        n = result.get("n") or (result.get("baseline") or {}).get("n")
        return int(n) if n else None

    def _restyle(self) -> None:
        style_plot_widget(self.plot)
        if self.shown is not None:
            self.draw(self.shown)

    def draw(self, result: dict[str, Any]) -> None:
        """Curves of accuracy per layer for each strength, each point with its 95% Wilson interval;
        baselines as dashed lines; the best point marked (partial results too)."""
        self.shown = result
        c = style_plot_widget(self.plot)
        self.plot.clear()
        layers, strengths, acc = result.get("layers", []), result.get("strengths", []), result.get("accuracy", [])
        n = self.n_of(result)
        self.points: list[pg.ScatterPlotItem] = []
        for i, (s, row) in enumerate(zip(strengths, acc)):
            colour = self.COLOURS[i % len(self.COLOURS)]
            xs = np.asarray(layers[: len(row)], dtype=float)
            ys = np.asarray(row, dtype=float)
            self.plot.plot(xs, ys, pen=pg.mkPen(colour, width=2), name=f"+ vector × {s:g}")
            if n:
                bounds = [wilson_interval(count_of(a, n), n) for a in row]
                self.plot.addItem(
                    pg.ErrorBarItem(
                        x=xs,
                        y=ys,
                        top=np.array([hi - a for (_, hi), a in zip(bounds, row)]),
                        bottom=np.array([a - lo for (lo, _), a in zip(bounds, row)]),
                        beam=0.12,
                        pen=pg.mkPen(colour, width=1),
                    )
                )
            points = pg.ScatterPlotItem(
                x=xs,
                y=ys,
                data=[point_text(int(x), s, a, n) for x, a in zip(xs, row)],
                symbol="o",
                size=8,
                brush=colour,
                pen=pg.mkPen(colour),
                hoverable=True,
                hoverSize=12,
                tip=lambda x, y, data: data,
            )
            points.sigHovered.connect(self._hovered)
            points.sigClicked.connect(
                lambda _item, pts, _ev, s=s: self._choose(int(round(pts[0].pos().x())), s) if len(pts) else None
            )
            self.plot.addItem(points)
            self.points.append(points)
        styles = {"0-shot": (c.muted, Qt.PenStyle.DashLine)}
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
        style_plot_widget(self.plot)  # the legend's new entries in the theme's colours
        done = bool(acc) and all(len(row) == len(layers) for row in acc) and len(acc) == len(strengths)
        self.chosen = None
        if done and layers:
            self._choose(*self.best_of(result), best=True)
        else:
            self.best.setText("")
            self.use_button.setEnabled(False)

    def _hovered(self, _item: pg.ScatterPlotItem, points: Any, _ev: Any) -> None:
        if len(points):
            self.readout.setText(str(points[0].data()))

    def _choose(self, layer: int, strength: float, best: bool = False) -> None:
        """The point "Use this layer and strength" sets (the best one, or one clicked): ringed; the best
        by the rule is starred."""
        result = self.shown or {}
        self.chosen = (layer, strength)
        text = point_text(layer, strength, self._accuracy_at(result, layer, strength), self.n_of(result))
        top = self.best_of(result)
        if self.chosen == top:
            self.best.setText(f"best: {text} (the rule: {BEST_RULE})")
        else:
            self.best.setText(f"chosen: {text}; the best (starred) is the {BEST_RULE}")
        pen = pg.mkPen(colours().foreground, width=2)
        for name, (x, y), symbol, size in (("best_mark", top, "star", 24), ("chosen_mark", self.chosen, "o", 18)):
            old = getattr(self, name, None)
            if old is not None:
                self.plot.removeItem(old)
            mark = pg.ScatterPlotItem(
                x=[x], y=[self._accuracy_at(result, x, y)], symbol=symbol, size=size, brush=None, pen=pen
            )
            mark.setZValue(-1)  # below the points: a click on the point reaches the point
            setattr(self, name, mark)
            self.plot.addItem(mark)
        self.use_button.setEnabled(self._swept_vector() is not None)
        if not best:
            self.readout.setText(text)

    def _swept_vector(self) -> int | None:
        """The store vector the shown sweep measured (from its run's spec)."""
        if self.shown_run is None:
            return None
        ref = str(run_repo.get_run(self.ctx.store, self.shown_run).spec.get("vector", ""))
        return int(ref.split(":", 1)[1]) if ref.startswith("vector:") and ref.split(":", 1)[1].isdigit() else None

    def use_chosen(self) -> None:
        """Make the chosen point the swept vector's default layer and strength (undoable)."""
        vector_id = self._swept_vector()
        if vector_id is None or self.chosen is None:
            self.ctx.notify("choose a point of a finished sweep of a store vector first", True)
            return
        self.ctx.undo.push(SetVectorDefaults(self.ctx, vector_id, self.chosen))
        self.ctx.notify(f"vector {vector_id} is now added at layer {self.chosen[0]} × {self.chosen[1]:g} by default")

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
        self.shown, self.shown_run = None, None
        self.live_job = self.ctx.submit_spec(spec, "layer sweep")
        if self.live_job is not None:
            self._job_changed(self.live_job)
        return self.live_job

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

    # -- the sweep job the plot follows ----------------------------------------------------------
    def _follows(self, job: Job) -> bool:
        return job is self.live_job or (job.run_id is not None and job.run_id == self.shown_run)

    def _job_changed(self, job: Job) -> None:
        if not self._follows(job):
            return
        if job.status in ("queued", "running"):
            self.live_job = job
            if job.run_id is not None:
                self.shown_run = job.run_id
            self.status.setText("layer sweep " + ("queued" if job.status == "queued" else "running"))
            return
        self.live_job = None  # ended: the job started here, or one for the shown run
        if job.status == "done" and job.run_id is not None:
            self.refresh()
            self.results.setCurrentIndex(max(self.results.findData(job.run_id), 0))
            self.show_run(job.run_id)
            self.status.setText(f"run {job.run_id} done")
        else:
            self.status.setText(f"run {job.run_id} {job.status}" + (f": {job.error}" if job.error else ""))

    def _job_progressed(self, job: Job, p: Progress) -> None:
        if not self._follows(job):
            return
        if job is not self.live_job:
            self._job_changed(job)
        self.status.setText(p.message)
        if "accuracy" in p.partial:
            self.draw({k: p.partial[k] for k in ("layers", "strengths", "accuracy", "n") if k in p.partial})

    # -- the prompts behind the curves (the viewer is built on first use) --------------------------
    def _prompt_hooks(self) -> None:
        self.prompts_button = prompts_button(
            self.results, "the prompts of the shown run; double-click a point of a curve for the prompts behind it"
        )
        self.prompts_button.clicked.connect(lambda: show_prompts(self.ctx, self.results.currentData(), parent=self))
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.setToolTip("click a point to choose it; double-click it to see the prompts behind it")

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
        """A double click on a point opens its prompts (a single click chooses the point)."""
        if not event.double():
            return
        at = self.point_at(event.scenePos())
        if at is not None and self.shown is not None:
            layer, s = at
            show_prompts(
                self.ctx, self.results.currentData(), self.shown.get("relation"), f"L{layer} ×{s:g}", parent=self
            )
