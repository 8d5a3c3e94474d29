"""Jobs that record themselves in the store.

`run_in_store` (a generator, like the job) writes a run row when the job starts, updates it as the
job yields (at most a few times a second), and finishes it as done (with its results ingested: AIE
matrices and mean activations as artifacts, vectors, evaluations, generated scenes), failed (with
the error), cancelled (closed at a yield) or interrupted (Ctrl+C). A process killed mid-job leaves
the row "running"; the next writer to open the store marks it "interrupted", and `resume` runs the
same spec in the same folder, where each job picks up
what it finished (AIE: finished relations, and the prompts of a relation checkpointed so far).
Inputs may name a data set of the store (`scenes="dataset:NAME"`), vectors of the store
(`vector="vector:ID"`, `vectors=("vector:3", ...)`) and AIE results of the store (`aie="aie:ID"`):
jobs read them from the store (jobs/io.py `Source`) and write their results through a `StoreSink`
straight into rows and artifacts (store/results.py); the run's folder holds only tables, reports and
resume checkpoints, and is not made for a job that has none (extract, compose, apply). A cancelled
run keeps the vectors it saved (fine-tuning saves its best vector so far at every epoch).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mfv_desktop import specs
from mfv_desktop.errors import SpecError, VectorFileError
from mfv_desktop.progress import Progress, relay
from mfv_desktop.scenes import load_scene_set, path_part, resolve_image
from mfv_desktop.store import Store, results
from mfv_desktop.store import models as m
from mfv_desktop.store.errors import StoreError
from mfv_desktop.store.exchange import IMPORT_KIND
from mfv_desktop.store.scenes import add_scenes, write_scene_set
from mfv_desktop.vector_meta import MAX_FILE_BYTES, read_header, read_vector_file

from .base import JobSpec, execute
from .io import DATASET, VECTOR, parse_ref, store_io

#: where a run's input vectors are copied (inside its folder), for jobs that read files (chain, report)
INPUT_VECTORS = "input-vectors"
UPDATE_EVERY_S = 0.5
#: jobs that read through a source and write through a sink (jobs/io.py); the others (generate, tasks,
#: chain, report) read files and write files in the run's folder, taken into the store afterwards
SINK_KINDS = ("aie", "preview", "extract", "sweep", "evaluate", "finetune", "compose", "apply", "analogy")
#: jobs whose results are all records: their runs write no file at all
NO_FOLDER_KINDS = ("extract", "compose", "apply")


def spec_from_json(d: dict[str, Any]) -> JobSpec:
    """The spec a run row recorded (specs.spec_from_json, over every kind in JOBS): StoreError when it
    does not read."""
    from . import JOBS

    try:
        return specs.spec_from_json(d, {kind: cls for kind, (cls, _) in JOBS.items()})
    except SpecError as e:
        raise StoreError(f"run of {e}") from e


def _run_row(s: Session, run_id: int) -> m.Run:
    """The run row `run_id` (StoreError when there is none)."""
    row = s.get(m.Run, run_id)
    if row is None:
        raise StoreError(f"no run {run_id} in the store")
    return row


def run_in_store(
    store: Store, spec: JobSpec, dataset: str | None = None, run_id: int | None = None
) -> Generator[Progress, None, tuple[int, dict]]:
    """A job recorded as a run row, as a generator: it yields `Progress.run_started(id)` as soon as
    the row exists, then the job's Progress (each with the run's id), and returns (run id, summary).
    Closed at a yield (cancelled), the run is recorded "cancelled" with the vectors it saved so far;
    Ctrl+C "interrupted" likewise; an exception "failed" with the error. `dataset`: where a generate
    job's scenes go. `run_id`: an existing run to continue (see `resume`)."""
    spec.validate()  # a spec no run can use is refused before its row exists
    with store.session() as s:
        if run_id is None:
            row = m.Run(
                kind=spec.kind,
                spec=spec.to_json(),
                status="pending",
                provenance={"dataset": dataset} if dataset else {},
            )
            s.add(row)
            s.flush()
            run_id = row.id
        folder = store.runs_dir / str(run_id)
        row = _run_row(s, run_id)
        row.out = str(folder.relative_to(store.data_dir))
        row.status, row.pid, row.started, row.error = "running", os.getpid(), time.time(), None
    rid: int = run_id
    last = 0.0

    def recorded(p: Progress) -> Progress:
        nonlocal last
        now = time.time()
        if now - last >= UPDATE_EVERY_S or p.done >= p.total:
            last = now
            with store.session() as s:
                r = _run_row(s, rid)
                r.done, r.total, r.message, r.updated = p.done, p.total, p.message[:200], now
        return dataclasses.replace(p, run_id=rid)

    from . import JOBS

    started = time.time()
    try:
        yield Progress.run_started(rid)
        job_spec = _materialise(store, spec, folder)
        job = JOBS[spec.kind][1]
        if spec.kind in SINK_KINDS:  # reads from the store, writes rows and artifacts straight into it
            job = functools.partial(job, io=store_io(store, rid, folder))
        out = None if spec.kind in NO_FOLDER_KINDS else folder
        summary = yield from relay(execute(job_spec, job, out), recorded)
        ingest(store, rid, folder, spec, dataset)
    except (GeneratorExit, KeyboardInterrupt) as e:  # stopped at a yield, or Ctrl+C: what it saved is kept
        _ingest_vectors(store, rid, folder)
        _finish(store, rid, "cancelled" if isinstance(e, GeneratorExit) else "interrupted", started)
        raise
    except BaseException as e:
        clear = store.explain(e)  # a full disk or an unwritable folder, named as such
        try:
            _finish(store, rid, "failed", started, error=str(clear) if clear else f"{type(e).__name__}: {e}")
        except StoreError:  # the failure cannot be recorded (a full disk): the next open marks it interrupted
            pass
        if clear is not None:
            raise clear from e
        raise
    _finish(store, rid, "done", started, result=summary)
    return rid, summary


def _finish(
    store: Store, run_id: int, status: str, started: float, error: str | None = None, result: dict | None = None
) -> None:
    with store.session() as s:
        r = _run_row(s, run_id)
        r.status, r.error, r.finished = status, error, time.time()
        r.seconds = round((r.seconds or 0.0) + r.finished - started, 3)
        r.message = ((error or "failed") if status == "failed" else status)[:200]
        if result is not None:
            r.result = json.loads(json.dumps(result, default=str))
            r.done = r.total = max(r.total, 1)


def resume(store: Store, run_id: int) -> Generator[Progress, None, tuple[int, dict]]:
    """Continue an interrupted, cancelled or failed run in its own folder: `run_in_store` on the
    spec it recorded (a generator; StoreError at its first step when the run cannot resume)."""
    with store.session() as s:
        row = s.get(m.Run, run_id)
        if row is None:
            raise StoreError(f"there is no run {run_id} in the store (see `mfv runs`)")
        if row.status in ("running", "done"):
            raise StoreError(f"run {run_id} is {row.status}; only interrupted, cancelled or failed runs resume")
        if row.kind == IMPORT_KIND:
            raise StoreError(
                f"run {run_id} is an import ({row.spec.get('what', '')}); an import cannot be resumed "
                "(a failed one added nothing): import again"
            )
        spec, dataset = spec_from_json(row.spec), (row.provenance or {}).get("dataset")
    return (yield from run_in_store(store, spec, dataset=dataset, run_id=run_id))


def _materialise(store: Store, spec: JobSpec, folder: Path) -> JobSpec:
    """The spec with its outputs in the run's folder. A job with a sink reads store references itself
    (jobs/io.py); for the others, data-set inputs are written as scene sets and store vectors exported."""
    changes: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(spec)}
    if "out" in names:
        out = getattr(spec, "out")
        if spec.kind == "extract":
            default = f"{path_part(getattr(spec, 'relation'))}.safetensors"
            changes["out"] = str(folder / (Path(out).name if out else default))
        elif spec.kind == "tasks":
            changes["out"] = str(folder / (Path(out).name if out else "tasks.json"))
        elif spec.kind == "generate":
            changes["out"] = str(folder / "scenes")
        else:
            changes["out"] = str(folder)
    if spec.kind in SINK_KINDS:
        return dataclasses.replace(spec, **changes)
    scenes = getattr(spec, "scenes", "")
    if isinstance(scenes, str) and (ref := parse_ref(scenes)).kind == DATASET:
        changes["scenes"] = str(write_scene_set(store, ref.value, folder / "input-scenes"))
    if "vector" in names:
        changes["vector"] = _vector_input(store, getattr(spec, "vector"), folder)
    if "vectors" in names:
        changes["vectors"] = tuple(_vector_input(store, v, folder) for v in getattr(spec, "vectors"))
    return dataclasses.replace(spec, **changes)


def _vector_input(store: Store, ref: str, folder: Path) -> str:
    """A vector file for a job that reads files, copied into the run's inputs: `vector:ID` is the
    store's vector; a file is copied as it is."""
    r = parse_ref(ref)
    if r.kind != VECTOR:
        src = Path(ref)
        if not ref or not src.is_file() or src.stat().st_size > MAX_FILE_BYTES:
            return ref  # the job names what is wrong with it
        data = src.read_bytes()
        dest = folder / INPUT_VECTORS / f"{hashlib.sha256(data).hexdigest()[:12]}-{src.name}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return str(dest)
    from mfv_desktop.store.exchange import export_vector

    assert r.id is not None
    return str(export_vector(store, r.id, folder / INPUT_VECTORS))


# -- results into the store -----------------------------------------------------------------------
def ingest(store: Store, run_id: int, folder: Path, spec: JobSpec, dataset: str | None = None) -> None:
    """Record what a finished run left in its folder: generated scenes; the AIE results, vectors and
    evaluations of jobs that write files (chain, report: a job with a sink stored its results already;
    a cancelled fine-tuning's best vector so far is taken in by `run_in_store`). Ingesting a run again (a resumed run
    whose first ingest failed) adds only what the run does not have yet."""
    if spec.kind == "generate":
        scenes = [
            s.with_(image=str(resolve_image(folder / "scenes", s)))
            for s in load_scene_set(folder / "scenes")
            if s.split == getattr(spec, "split")
        ]
        from mfv_desktop.progress import run_to_end

        run_to_end(
            add_scenes(
                store,
                dataset or "generated",
                scenes,
                origin="generated",
                label_source="geometry",
                label_status="confirmed",
            )
        )
    if spec.kind in SINK_KINDS:  # its sink stored its results (its files are checkpoints)
        return
    from .prompts import ingest_groups

    ingest_groups(store, run_id, folder)  # first: the AIE results' task sets then have their tasks
    for aie_json in sorted(folder.rglob("aie.json")):
        _ingest_aie(store, run_id, aie_json)
    _ingest_vectors(store, run_id, folder)
    _ingest_evaluations(store, run_id, sorted(folder.rglob("evaluation.json")), getattr(spec, "split", None) or "")


def _ingest_vectors(store: Store, run_id: int, folder: Path) -> None:
    """Every vector file the run wrote (not those it was given: input-vectors/)."""
    if not folder.is_dir():
        return
    inputs = folder / INPUT_VECTORS
    for f in sorted(folder.rglob("*.safetensors")):
        if INPUT_VECTORS not in f.relative_to(folder).parts and read_header(f) is not None:
            _ingest_vector(store, run_id, f, inputs=inputs)


def _ingest_aie(store: Store, run_id: int, aie_json: Path) -> None:
    """An AIE job's files (aie.json beside aie.safetensors and mean_activations.safetensors) as a result."""
    from safetensors.numpy import load_file

    meta = json.loads(aie_json.read_text())
    aie = load_file(str(aie_json.parent / "aie.safetensors"))["aie"]
    mean = load_file(str(aie_json.parent / "mean_activations.safetensors"))["mean"]
    aie_id = results.add_aie_result(store, run_id, aie, mean, meta)
    from mfv_desktop.store.prompts import add_prompt_effects

    from .prompts import read_effects

    effects = read_effects(aie_json.parent)
    if effects is not None:
        digest, idx, arr = effects
        add_prompt_effects(store, aie_id, digest, idx.tolist(), arr)


def _ingest_vector(
    store: Store, run_id: int | None, path: Path, kind: str | None = None, inputs: Path | None = None
) -> int:
    """A checked vector file as a row (once per content); a composite's parts become its parents,
    with their weights, found in the store by content. Paths named inside the file are followed only
    into `inputs` (a run's own input-vectors/, where parts given as files were copied): those parts
    are added first. A file that fails leaves no artifact and no row (StoreError names it)."""
    try:
        meta, _ = read_vector_file(path)
        data = path.read_bytes()
    except (VectorFileError, OSError) as e:
        raise StoreError(str(e)) from e
    if inputs is not None:
        for part in meta["provenance"].get("parents", []):
            f = _input_file(inputs, part.get("file"))
            if f is not None and hashlib.sha256(f.read_bytes()).hexdigest() != hashlib.sha256(data).hexdigest():
                _ingest_vector(store, run_id, f, kind="imported")
    return results.add_vector(store, run_id, data, kind=kind, meta=meta, where=str(path))


def _input_file(inputs: Path, name: Any) -> Path | None:
    """A file named inside a vector file, when it lies in `inputs` (never anywhere else)."""
    if not isinstance(name, str) or not name:
        return None
    try:
        f = Path(name).resolve()
        ok = f.is_relative_to(inputs.resolve()) and f.is_file()
    except (OSError, ValueError, RuntimeError):
        return None
    return f if ok else None


def _ingest_evaluations(store: Store, run_id: int, paths: list[Path], split: str) -> None:
    """Accuracy rows of evaluation.json files; a row's own split (a report has several) wins over the
    file's and the spec's."""
    rows: list[dict[str, Any]] = []
    prov: dict[str, Any] = {}
    for path in paths:
        d = json.loads(path.read_text())
        prov = prov or d.get("provenance", {})
        rows += [{**r, "split": r.get("split", d.get("split", split))} for r in d["rows"]]
    results.add_evaluations(store, run_id, rows, prov, split)


def import_vector(
    store: Store, path: str | Path, model: str | None = None, device: str | None = "cpu", dtype: str = "fp32"
) -> int:
    """Add a function-vector file made elsewhere; returns its row id (the existing row's, when the
    same file is in the store already). The file is checked whole first (see `vector_meta`); paths
    named inside it are never followed (a composite's parts are linked when they are in the store).
    With `model` (a model reference, see `load_backend`), the vector's geometry is checked against
    that model too: a vector made for another model is refused, naming the file. Without it, that
    check happens when the vector is applied."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such file; choose a function-vector file (.safetensors)")
    if read_header(path) is None:
        raise StoreError(
            f"{path.name} is not a function vector file ({path}); choose a .safetensors written "
            "by `mfv extract`, `mfv finetune` or `mfv compose`, or exported from a store"
        )
    if model is not None:
        from mfv_desktop.backends import BackendError, load_backend
        from mfv_desktop.fv.vector_file import FunctionVector

        fv = FunctionVector.load(path)
        try:
            fv.check_fits(load_backend(model, device=device, dtype=dtype))
        except BackendError as e:
            raise BackendError(f"{path.name}: {e} Or switch to its model ({fv.model_id}) before importing it.") from e
    return _ingest_vector(store, None, path, kind="imported")


def runs(store: Store) -> list[m.Run]:
    with store.session() as s:
        return list(s.scalars(select(m.Run).order_by(m.Run.id)))
