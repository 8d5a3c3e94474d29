"""The AIE tab: causal mediation (AIE heatmaps that fill in as the job runs, two runs side by side on
one colour range, vectors built from the heads picked on a map). The jobs are the engine's (AIESpec,
ExtractSpec), queued through the app context and recorded in the store like `mfv --store`."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from mfv_desktop.progress import Progress
from mfv_desktop.scenes import BASE_RELATIONS
from mfv_desktop.store import StoreError
from mfv_desktop.store import runs as run_repo
from mfv_desktop.store import scenes as repo
from mfv_desktop.ui.science.heatmap import AIEHeatmap
from mfv_desktop.ui.science.prompt_hooks import prompts_button, show_prompts
from mfv_desktop.ui.shell.context import AppContext
from mfv_desktop.ui.shell.jobs import Job

log = logging.getLogger("mfv_desktop")


def row_of(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    for w in widgets:
        row.addWidget(w)
    row.addStretch(1)
    return row


def dataset_combo(ctx: AppContext, combo: QComboBox) -> None:
    """Fill a combo with the store's data sets (keeping the choice), largest first."""
    current = combo.currentData()
    combo.clear()
    for d in sorted(repo.datasets(ctx.store), key=lambda d: -d["n_scenes"]):
        if d["n_scenes"]:
            combo.addItem(f"{d['name']} ({d['n_scenes']} scenes)", d["name"])
    if current is not None and combo.findData(current) >= 0:
        combo.setCurrentIndex(combo.findData(current))


class AIEPanel(QWidget):
    """Run AIE on a data set, watch one heatmap per relation fill in, compare with an earlier run, and
    build a function vector from the heads selected on a map."""

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.maps: dict[str, AIEHeatmap] = {}
        self.other_maps: dict[str, AIEHeatmap] = {}
        self.shown_run: int | None = None  # the run whose maps are on the left
        self.live_run: int | None = None  # the AIE run being measured now (that this panel follows)
        self.live_job: Job | None = None  # the job measuring it (a resumed run's job too)
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
        self.matched_only.setToolTip(
            "the authors' convention: average each head's indirect effect over the "
            "corrupted prompts whose clean prompt the model answers correctly (over all "
            "of them when it answers none); unchecked: over every corrupted prompt"
        )
        self.run_button = QPushButton("Run AIE")
        self.run_button.setToolTip(
            "mean head activations and the average indirect effect of every head, per relation (the engine's `mfv aie`)"
        )
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

        run_row = row_of(QLabel("Data set"), self.dataset, *self.relation_boxes.values())
        options_row = row_of(
            QLabel("prompts per relation"),
            self.n_prompts,
            QLabel("K"),
            self.k,
            self.method,
            self.matched_only,
            self.run_button,
        )
        show_row = row_of(QLabel("Show"), self.results, QLabel("beside"), self.compare)
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
        # the maps follow the run they show, whoever started its job (Run AIE, or Resume in the Jobs panel)
        ctx.jobs.changed.connect(self._job_changed)
        ctx.jobs.progressed.connect(self._job_progressed)
        self.ask_export_path = lambda: QFileDialog.getSaveFileName(
            self, "Export the AIE map", f"aie-{self.active or 'map'}.png", "PNG (*.png);;CSV (*.csv);;NumPy (*.npy)"
        )[0]
        self._prompt_hooks()
        self.refresh()

    # -- what is in the store ----------------------------------------------------------------------
    def aie_runs(self) -> list[dict[str, Any]]:
        """Runs with AIE results, newest first: id, relations, model, whether the AIE is over matched
        prompts only (as recorded), the corrupted prompts it averages over and those there were (summed
        over relations), and per relation how it was averaged."""
        from mfv_desktop.jobs.mediation import averaging_text

        rows = [
            (r.run_id, r.relation, r.model_id, r.n_prompts, r.provenance)
            for r in run_repo.list_aie_results(self.ctx.store, with_run=True)
            if r.run_id is not None
        ]
        status = {r.id: r.status for r in run_repo.list_runs(self.ctx.store, kind="aie")}
        runs: dict[int, dict[str, Any]] = {}
        for run_id, rel, model_id, n, prov in rows:
            r = runs.setdefault(
                run_id,
                {
                    "id": run_id,
                    "relations": [],
                    "model_id": model_id,
                    "n_prompts": 0,
                    "n_corrupted": 0,
                    "matched_only": bool(prov.get("matched_only")),
                    "averaged_over": [],
                    "status": status.get(run_id, ""),
                },
            )
            r["relations"].append(rel)
            r["n_prompts"] += n
            r["n_corrupted"] += prov.get("n_corrupted", n)
            r["averaged_over"].append(f"{rel}: {averaging_text({**prov, 'n_prompts': n})}")
        return sorted(runs.values(), key=lambda r: -r["id"])

    def load_aie(self, run_id: int) -> dict[str, tuple[np.ndarray, int]]:
        """relation -> (AIE matrix, prompts) of a finished run."""
        found = [(r.relation, r.aie_artifact, r.n_prompts) for r in run_repo.list_aie_results(self.ctx.store, run_id)]
        return {rel: (self.ctx.store.artifacts.get(digest)["aie"], n) for rel, digest, n in found}

    def measured(self, run_id: int) -> dict[str, str]:
        """relation -> what its map was measured on (the prompts kept and why, the clean accuracy, the
        corrupted baseline), from the stored AIE results of a run."""
        from mfv_desktop.jobs.mediation import measured_text

        out = {}
        for r in run_repo.list_aie_results(self.ctx.store, run_id):
            try:
                meta = self.ctx.store.artifacts.meta(r.aie_artifact)
            except StoreError:
                meta = {}
            info = {"n_prompts": r.n_prompts, **meta, **r.provenance, "clean_accuracy": r.clean_accuracy}
            out[r.relation] = measured_text(info)
        return out

    def refresh(self) -> None:
        dataset_combo(self.ctx, self.dataset)
        for combo, none in ((self.results, None), (self.compare, "nothing")):
            keep = combo.currentData()
            combo.clear()
            if none:
                combo.addItem(none, None)
            for r in self.aie_runs():
                prompts = (
                    f"matched-only · {r['n_prompts']} of {r['n_corrupted']} prompts"
                    if r["matched_only"]
                    else f"all corrupted · {r['n_prompts']} prompts"
                )
                state = "" if r["status"] == "done" else f" · {r['status']}"
                combo.addItem(
                    f"run {r['id']}{state}: {', '.join(r['relations'])} · {prompts} · {r['model_id']}", r["id"]
                )
                combo.setItemData(combo.count() - 1, "\n".join(r["averaged_over"]), Qt.ItemDataRole.ToolTipRole)
            if keep is not None and combo.findData(keep) >= 0:
                combo.setCurrentIndex(combo.findData(keep))
        if self.shown_run is None and self.live_job is None and self.results.count():
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
            mp.head_activated.connect(lambda layer, head, rel=rel: self.drill_down(rel, layer, head))
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
        """A run's maps (those not measured yet say why); beside them (one colour range per relation)
        the run picked to compare."""
        if run_id is None:
            return
        if self.live_run != run_id:  # another run is shown: the maps no longer follow the running one
            self.live_job, self.live_run = None, None
        self.shown_run = run_id
        other_id = self.compare.currentData()
        try:
            mine = self.load_aie(run_id)
            measured = self.measured(run_id)
            other = self.load_aie(other_id) if other_id is not None and other_id != run_id else {}
        except StoreError as e:  # a damaged or missing artifact: say which, and what to do
            log.error("AIE run %s cannot be shown: %s", run_id, e)
            self.status.setText(f"run {run_id} cannot be shown: {e}")
            self.ctx.notify(f"run {run_id} cannot be shown: {e}", error=True)
            return
        run = run_repo.get_run(self.ctx.store, run_id)
        planned = [r for r in run.spec.get("relations", []) if r not in mine]
        self._layout_maps([*mine, *planned], beside=bool(other))
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
            self.maps[rel].set_measured(measured.get(rel, ""))
        job = self.ctx.jobs.for_run(run_id)
        live = job is not None and job.status in ("queued", "running")
        for rel in planned:
            self.maps[rel].set_message(
                "waiting: measured after the relations before it"
                if live
                else f"not measured: the run is {run.status}"
                + (" (Resume it in the Jobs panel)" if run.status != "done" else "")
            )
        self.active = next(iter(mine), None)
        state = (
            ""
            if run.status == "done"
            else f" ({run.status}: {len(mine)} of {len(mine) + len(planned)} relations measured)"
        )
        self.status.setText(f"run {run_id}{state}" + (f" beside run {other_id}" if other else ""))

    def _set_top_k(self, k: int) -> None:
        for mp in [*self.maps.values(), *self.other_maps.values()]:
            mp.top_k = k
            if mp.aie is not None:
                mp.set_aie(mp.aie, levels=tuple(mp.bar.levels()))

    def _selected(self, rel: str, heads: list) -> None:
        self.active = rel
        self.selection.setText(
            f"{rel}: {len(heads)} heads "
            + ", ".join(f"{a}:{b}" for a, b in heads[:24])
            + (" …" if len(heads) > 24 else "")
        )

    # -- running ---------------------------------------------------------------------------------
    def spec(self):
        from mfv_desktop.jobs import AIESpec

        relations = tuple(r for r, box in self.relation_boxes.items() if box.isChecked())
        return AIESpec(
            scenes=f"dataset:{self.dataset.currentData()}",
            relations=relations,
            n_prompts=self.n_prompts.value(),
            k=self.k.value(),
            method=self.method.currentText(),
            matched_only=self.matched_only.isChecked(),
            model=self.ctx.model_ref(),
        )

    def run_aie(self):
        if self.dataset.currentData() is None:
            self.ctx.notify("there are no scenes to run AIE on: add the sample data set or import images", True)
            return None
        spec = self.spec()
        if not spec.relations:
            self.ctx.notify("pick at least one relation", True)
            return None
        self.live_run, self.shown_run = None, None
        self._layout_maps(list(spec.relations), beside=False)
        for i, mp in enumerate(self.maps.values()):
            mp.set_message(
                "waiting for the job to start" if i == 0 else "waiting: measured after the relations before it"
            )
        job = self.ctx.submit_spec(spec, "AIE")
        self.live_job = job
        if job is not None:
            self._job_changed(job)
        return job

    def _follows(self, job: Job) -> bool:
        """Is this the job of the run the maps show (started here, or a resumed run of the shown run)?"""
        return job is self.live_job or (job.run_id is not None and job.run_id in (self.shown_run, self.live_run))

    def _job_changed(self, job: Job) -> None:
        """A followed job was queued, started or ended: say so, and show the finished run from the store."""
        if not self._follows(job):
            return
        if job is not self.live_job and job.status in ("queued", "running"):
            self.live_job = job  # a resumed run of the shown run
        if job.run_id is not None:
            self.live_run = job.run_id
        run = f"run {job.run_id}" if job.run_id is not None else "AIE"
        if job.status == "queued":
            self.status.setText(f"{run} queued: it starts when the job before it ends")
        elif job.status == "running":
            p = job.progress
            self.status.setText(f"{run} running: " + (p.message if p is not None else "loading the model…"))
        else:  # ended: the job started here, or one for the shown run (a resumed run may end without progress)
            self.live_job = None
            if job.status == "done" and job.run_id is not None:
                self.refresh()
                self.results.setCurrentIndex(max(self.results.findData(job.run_id), 0))
                self.show_run(job.run_id)
                self.status.setText(f"{run} done: every relation measured")
            else:
                why = f"failed: {job.error}" if job.status == "failed" else job.status
                at = job.progress.partial.get("relation") if job.progress else None
                for rel, mp in self.maps.items():
                    if mp.aie is None:
                        mp.set_message(f"not measured: the run was {job.status}")
                    elif rel == at:
                        mp.set_measured(f"not finished: the run was {job.status} while this relation was measured")
                self.status.setText(f"{run} {why} (Resume it in the Jobs panel)")

    def _job_progressed(self, job: Job, p: Progress) -> None:
        """Partial results of the followed job: the running sums of the relation being measured."""
        if not self._follows(job):
            return
        if job is not self.live_job:
            self._job_changed(job)  # a resumed run of the shown run: follow it
        rel = p.partial.get("relation")
        self.status.setText(f"run {job.run_id} running: {p.message}")
        mp = self.maps.get(rel or "")
        if mp is None:
            return
        if "ie_sum" in p.partial and p.partial.get("n_prompts"):
            n = int(p.partial["n_prompts"])
            mp.set_aie(np.asarray(p.partial["ie_sum"]) / n, n)
            mp.set_measured(f"measuring: {n} corrupted prompts so far")
        elif mp.aie is None or "mean activations" in p.message:
            if mp.aie is not None:  # measured again from the start (a resumed relation)
                mp.clear_aie()
            mp.set_message(f"computing mean activations… ({p.done} of {p.total} steps of the run)")

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
            self.ctx.notify("select heads on a finished run's map first (click them, or Select top K)", True)
            return None
        aie_id = find_aie_result(self.ctx.store, self.shown_run, self.active)
        if aie_id is None:
            self.ctx.notify(f"run {self.shown_run} has no AIE result for '{self.active}'", True)
            return None
        spec = ExtractSpec(
            aie=aie_ref(aie_id),
            relation=self.active,
            heads=tuple(mp.selected),
            label=self.label.text().strip(),
            layer=None if self.layer.value() < 0 else self.layer.value(),
            strength=self.strength.value(),
            model=self.ctx.model_ref(),
        )
        return self.ctx.submit_spec(spec, f"vector: {self.active}", on_done=self._built)

    def _built(self, result: tuple[int, dict]) -> None:
        _, summary = result
        self.ctx.vectorsChanged.emit()
        self.ctx.notify(
            f"vector saved: {len(summary['heads'])} heads, norm {summary['norm']:.1f}, "
            f"layer {summary['layer']} (in the Vectors panel)"
        )

    def ask_export(self) -> None:
        mp = self.maps.get(self.active or "")
        if mp is None or mp.aie is None:
            return self.ctx.notify("there is no map to export yet", True)
        path = self.ask_export_path()
        if path:
            try:
                mp.export(path)
            except (OSError, ValueError) as e:
                self.ctx.notify(str(e), True)

    # -- the prompts behind the maps (the viewer and the drill-down are built on first use) ---------
    def _prompt_hooks(self) -> None:
        self.prompts_button = prompts_button(
            self.compare, "the prompts of the shown run, of the relation whose map was clicked last"
        )
        self.prompts_button.clicked.connect(self.show_prompts)
        self.selection.setText(f"{self.selection.text()}; double-click a head to see its effect on each prompt")

    def show_prompts(self):
        return show_prompts(self.ctx, self.shown_run, self.active, parent=self)

    def drill_down(self, relation: str, layer: int, head: int):
        """A head's effect on each prompt (its map was double-clicked)."""
        if self.shown_run is None:
            self.ctx.notify("the run is still going: drill into a head once it is done", True)
            return None
        from mfv_desktop.ui.science.drilldown import open_drilldown

        self.active = relation
        return open_drilldown(self.ctx, self.shown_run, relation, layer, head, parent=self)
