"""The science jobs: causal mediation, vector extraction, layer sweeps, evaluation.

Each reads its inputs from a source and writes its records (AIE results, vectors, evaluation rows)
through a sink (jobs/io.py): files in its output folder headless, rows and artifacts in a store run.
Tables (CSV), reports and resume checkpoints go to the sink's folder.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mfv_desktop.errors import SpecError
from mfv_desktop.progress import Progress
from mfv_desktop.scenes import check_single_token, load_scene_set
from mfv_desktop.specs import (
    AIESpec,
    EvaluateSpec,
    ExtractSpec,
    MediationSpec,
    ModelJobSpec,
    PreviewSpec,
    SweepSpec,
)
from mfv_desktop.tasks import Task, TaskSet, TaskSpec, build_task_set

from .base import Gen, write_json
from .io import JobIO, LoadedVector, Scenes, folder_io
from .results import EvaluationResult, ExtractResult, LayerSweepResult

__all__ = ["AIESpec", "EvaluateSpec", "ExtractSpec", "MediationSpec", "ModelJobSpec", "PreviewSpec", "SweepSpec"]


def _backend(spec: ModelJobSpec):
    from mfv_desktop.backends import load_backend

    return load_backend(spec.model.model, spec.model.device, spec.model.dtype)


def check_layers(backend, layers: Sequence[int | None]) -> None:
    """Layers a spec names must be the model's: SpecError when the job starts, before any work."""
    n = backend.geometry.n_layers
    bad = [x for x in layers if x is not None and not 0 <= x < n]
    if bad:
        raise SpecError(f"layer {bad[0]} is not a layer of {backend.model_id}, which has layers 0-{n - 1}")


def build_tasks(scenes: str | Path | Scenes, spec: TaskSpec) -> TaskSet:
    """A task set from a scene set already read (a source's `Scenes`) or a scene-set folder."""
    if isinstance(scenes, Scenes):
        return build_task_set(scenes.scenes, scenes.root, spec)
    return build_task_set(load_scene_set(scenes), scenes, spec)


def check_answers(backend, tasks: Sequence[Task]) -> None:
    """Every answer must be one token for this model, or first-token accuracy means nothing."""
    names = sorted({t.answer for t in tasks} | {d.answer for t in tasks for d in t.demos})
    check_single_token(names, backend.token_count, backend.model_id)


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# -- causal mediation ---------------------------------------------------------------------------
def run_extract(spec: ExtractSpec, io: JobIO | None = None) -> Gen[ExtractResult]:
    """`spec.aie`: an AIE result of the store (`aie:ID`) or an AIE job's output folder; the vector goes
    through the sink (a file at `spec.out`, or a store vector)."""
    import torch

    from mfv_desktop.fv import default_layer, function_vector, top_heads
    from mfv_desktop.fv.vector_file import FunctionVector

    io = io or folder_io(spec)
    backend = _backend(spec)
    g = backend.geometry
    check_layers(backend, [spec.layer, *(h[0] for h in spec.heads)])
    if any(h[1] >= g.n_heads for h in spec.heads):
        raise SpecError(
            f"extract: heads {list(spec.heads)[:4]} name a head beyond {backend.model_id}'s "
            f"{g.n_heads} heads per layer (0-{g.n_heads - 1})"
        )
    src = io.source.aie(spec.aie, spec.relation)
    aie, mean, aie_meta = src.aie, torch.from_numpy(src.mean), src.meta
    if mean.shape != (g.n_layers, g.n_heads, g.d_head):
        raise ValueError(
            f"AIE results in {src.where} are for a model with {tuple(mean.shape)} heads; "
            f"{backend.model_id} has {(g.n_layers, g.n_heads, g.d_head)}: run `mfv aie` on this model"
        )
    heads = [tuple(h) for h in spec.heads] if spec.heads else top_heads(aie, spec.top_k)
    yield Progress(0, 1, "building vector")
    v = function_vector(backend, mean, heads, spec.bias)  # type: ignore[arg-type]
    layer = default_layer(g.n_layers) if spec.layer is None else spec.layer
    fv = FunctionVector(
        vector=v,
        label=spec.label or f"{spec.relation} top{len(heads)}",
        relation=spec.relation,
        model_id=backend.model_id,
        d_model=g.d_model,
        n_layers=g.n_layers,
        layer=layer,
        heads=heads,  # type: ignore[arg-type]
        bias=spec.bias,
        strength=spec.strength,
        hook_point=backend.hook_point,
        provenance={
            "aie": src.where,
            "aie_meta": {
                k: aie_meta.get(k) for k in ("k", "n_prompts", "clean_tasks_hash", "corrupted_tasks_hash", "corruption")
            },
            "heads_aie": [float(aie[h]) for h in heads],
            **backend.provenance(),
        },
    )
    ref = io.sink.vector(fv, spec.out, io.source)
    yield Progress(1, 1, "vector saved")
    return ExtractResult(ref, heads, float(v.norm()), layer)  # type: ignore[arg-type]


def _read_vector(io: JobIO, ref: str, backend) -> LoadedVector:
    """A vector from the job's source, checked to fit the model."""
    loaded = io.source.vector(ref)
    loaded.fv.check_fits(backend)
    return loaded


def _load_vector(path: str, backend):
    from mfv_desktop.fv.vector_file import FunctionVector

    fv = FunctionVector.load(path)
    fv.check_fits(backend)
    return fv


def run_sweep(spec: SweepSpec, io: JobIO | None = None) -> Gen[LayerSweepResult]:
    from mfv_desktop.fv import evaluate, layer_sweep, within
    from mfv_desktop.fv.fast import fast_layer_sweep, supports_fast

    from .prompts import record_eval

    io = io or folder_io(spec)
    backend = _backend(spec)
    loaded = _read_vector(io, spec.vector, backend)
    fv = loaded.fv
    check_layers(backend, spec.layers or ())
    scenes = io.source.scenes(spec.scenes)
    zero = build_tasks(
        scenes,
        TaskSpec(
            relations=(fv.relation,), kind="zeroshot", seed=spec.seed, split=spec.split, max_per_relation=spec.n_prompts
        ),
    )
    tasks = zero.tasks
    check_answers(backend, tasks)
    if spec.method not in ("fast", "reference"):
        raise ValueError(f"unknown sweep method {spec.method!r}: use fast or reference")
    sweep = fast_layer_sweep if spec.method == "fast" and supports_fast(backend) else layer_sweep
    icl = [
        (
            k,
            build_tasks(
                scenes,
                TaskSpec(
                    relations=(fv.relation,),
                    k=k,
                    kind="clean",
                    seed=spec.seed,
                    split=spec.split,
                    max_per_relation=spec.n_prompts,
                ),
            ),
        )
        for k in spec.ks
    ]
    total = len(tasks) * (1 + len(icl))
    res = yield from within(
        sweep(backend, tasks, fv.vector, spec.layers, spec.strengths, spec.batch_size), 0, total, "layer sweep"
    )
    baselines = {"0-shot": res.baseline.accuracy}
    rel, about = fv.relation, {"vector": spec.vector, "vector_sha256": loaded.sha256, "vector_id": io.vector_id(loaded)}
    record_eval(io, backend, rel, "0-shot", zero, res.baseline, {"k": 0})
    for strength, row in zip(res.strengths, res.conditions):
        for layer, r in zip(res.layers, row):
            detail = {"layer": layer, "strength": strength, **about}
            record_eval(io, backend, rel, f"L{layer} ×{strength:g}", zero, r, detail)
    for i, (k, k_set) in enumerate(icl):
        r = yield from within(
            evaluate(backend, k_set.tasks, spec.batch_size), len(tasks) * (1 + i), total, f"{k}-shot ICL"
        )
        baselines[f"{k}-shot ICL"] = r.accuracy
        record_eval(io, backend, rel, f"{k}-shot ICL", k_set, r, {"k": k})
    summary = LayerSweepResult(**res.to_json(), baselines=baselines, relation=fv.relation).summary()
    out = io.sink.folder
    write_csv(out / "sweep.csv", ["strength", "layer", "accuracy", "mean_answer_prob"], res.rows())
    write_json(
        out / "sweep.json",
        {**summary, "vector": spec.vector, "n_prompts": len(tasks), "provenance": backend.provenance()},
    )
    return LayerSweepResult(**summary)


# -- evaluation ---------------------------------------------------------------------------------
def run_evaluate(spec: EvaluateSpec, io: JobIO | None = None) -> Gen[EvaluationResult]:
    """Accuracy rows go through the sink, each row with a vector naming it (`vector_id` in a store)."""
    from mfv_desktop.fv import evaluate, injection, within

    from .prompts import record_eval

    io = io or folder_io(spec)
    backend = _backend(spec)
    check_layers(backend, [spec.layer])
    loaded = [_read_vector(io, p, backend) for p in spec.vectors]
    scenes = io.source.scenes(spec.scenes)
    #: (relation, condition, task set, intervention, what the prompt group records of the condition)
    jobs: list[tuple[str, str, TaskSet, Any, dict[str, Any]]] = []
    vector_of: dict[tuple[str, str], LoadedVector] = {}
    for rel in spec.relations:
        for k in spec.ks:
            ts = build_tasks(
                scenes,
                TaskSpec(
                    relations=(rel,),
                    k=k,
                    kind="zeroshot" if k == 0 else "clean",
                    seed=spec.seed,
                    split=spec.split,
                    max_per_relation=spec.n_prompts,
                ),
            )
            jobs.append((rel, "0-shot" if k == 0 else f"{k}-shot ICL", ts, None, {"k": k}))
        for lv in (v for v in loaded if v.fv.relation == rel):
            fv = lv.fv
            ts = build_tasks(
                scenes,
                TaskSpec(
                    relations=(rel,), kind="zeroshot", seed=spec.seed, split=spec.split, max_per_relation=spec.n_prompts
                ),
            )
            layer = fv.layer if spec.layer is None else spec.layer
            strength = fv.strength if spec.strength is None else spec.strength
            cond = f"0-shot + FV '{fv.label}' @L{layer}"
            vector_of[(rel, cond)] = lv
            about = {"vector": lv.ref, "vector_sha256": lv.sha256, "vector_id": io.vector_id(lv)}
            jobs.append(
                (
                    rel,
                    cond,
                    ts,
                    injection(fv.vector, layer, strength),
                    {"layer": layer, "strength": strength, **about},
                )
            )
    for _, _, ts, _, _ in jobs:
        check_answers(backend, ts.tasks)
    total = sum(len(ts.tasks) for _, _, ts, _, _ in jobs)
    rows: list[list[Any]] = []
    done = 0
    for rel, cond, ts, interv, detail in jobs:
        kw = {"intervention": interv} if interv else {}
        r = yield from within(evaluate(backend, ts.tasks, spec.batch_size, **kw), done, total, f"{rel}: {cond}")
        done += len(ts.tasks)
        record_eval(io, backend, rel, cond, ts, r, detail)
        rows.append([rel, cond, r.n, round(r.accuracy, 4), round(r.mean_answer_prob, 4)])
        yield Progress(done, total, f"{rel}: {cond}", {"rows": list(rows)})
    out = io.sink.folder
    header = ["relation", "condition", "n", "accuracy", "mean_answer_prob"]
    write_csv(out / "evaluation.csv", header, rows)
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    (out / "evaluation.md").write_text("\n".join(md) + "\n")
    # a row with a vector names it by its file's sha256 (a store finds the vector by it, also when a
    # chain or report run is taken in afterwards) and, in a store, by its id
    records = [dict(zip(header, r)) for r in rows]
    for rec in records:
        measured = vector_of.get((rec["relation"], rec["condition"]))
        if measured is not None:
            rec["vector_sha256"] = measured.sha256
    write_json(out / "evaluation.json", {"rows": records, "provenance": backend.provenance()})
    io.sink.evaluations(
        [
            {**r, "vector_id": io.vector_id(vector_of[(r["relation"], r["condition"])])}
            if (r["relation"], r["condition"]) in vector_of
            else r
            for r in records
        ],
        backend.provenance(),
        spec.split or "",
    )
    return EvaluationResult(records)
