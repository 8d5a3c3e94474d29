"""Jobs on function vectors beyond extraction: fine-tuning, composing, solving analogies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mfv_desktop.progress import Progress, as_part
from mfv_desktop.specs import AnalogySpec, ApplySpec, ComposeSpec, FinetuneSpec
from mfv_desktop.tasks import Shot, Task, TaskSpec

from .base import JobGen, write_json
from .io import JobIO, folder_io
from .science import (
    _backend,
    _load_vector,
    _read_vector,
    build_tasks,
    check_answers,
    check_layers,
    write_csv,
)

__all__ = ["AnalogySpec", "ApplySpec", "ComposeSpec", "FinetuneSpec"]


# -- fine-tuned function vectors ------------------------------------------------------------------
def _base(fv):
    from mfv_desktop.fv.analogy import BaseVector

    return BaseVector(fv.vector, fv.layer, fv.strength, fv.relation)


def _parts(paths: Sequence[str], backend, io: JobIO | None = None):
    """(the vectors, as base vectors, and as read: with their sha256) from the job's source (files
    when no source is given)."""
    if not paths:
        raise ValueError("give the base vectors to compose (--vectors)")
    loaded = [_read_vector(io, p, backend) for p in paths] if io is not None else None
    fvs = [lv.fv for lv in loaded] if loaded is not None else [_load_vector(p, backend) for p in paths]
    return fvs, [_base(f) for f in fvs]


def _image_shot(image: str, anchor: str, answer: str, what: str) -> Shot:
    """A user's image and question as a query; the image is checked (BadImport names it)."""
    from mfv_desktop.scenes.importers import check_image

    path = Path(image).expanduser()
    check_image(path)
    if not anchor:
        raise ValueError(f"name the {what} image's anchor object")
    return Shot(str(path), str(path.resolve()), anchor, answer or anchor, "analogy")


def run_compose(spec: ComposeSpec, io: JobIO | None = None) -> JobGen:
    """A composite's parents are named by their files' sha256 (found in a store by content); the
    composite goes through the sink (in a store, parts given as files are added first)."""
    from mfv_desktop.fv.analogy import composite_layer, composite_vector, composite_weights, source_probs
    from mfv_desktop.fv.vector_file import FunctionVector

    io = io or folder_io(spec)
    backend = _backend(spec)
    check_layers(backend, [spec.layer])
    fvs, parts = _parts(spec.vectors, backend, io)
    shas = [io.source.vector(p).sha256 for p in spec.vectors]
    probs: np.ndarray | None = None
    if spec.weights:
        if len(spec.weights) != len(parts):
            raise ValueError(f"{len(spec.weights)} weights for {len(parts)} vectors: give one weight per vector")
        weights = np.asarray(spec.weights, dtype=np.float64)
    else:
        if not spec.source_answer:
            raise ValueError("weights come from a source pair (--source IMAGE:A:B) or are given (--weights)")
        shot = _image_shot(spec.source_image, spec.source_anchor, spec.source_answer, "source")
        source = Task("analogy", "zeroshot", (), shot)
        check_answers(backend, [source])
        yield Progress(0, 1, "source probabilities")
        probs = source_probs(backend, [source], parts)[0]
        weights = composite_weights(probs, spec.weighting, spec.temperature)  # type: ignore[arg-type]
    layer = composite_layer(parts, weights) if spec.layer is None else spec.layer
    vec = composite_vector(parts, weights)
    g = backend.geometry
    parents = [
        {
            "label": f.label,
            "relation": f.relation,
            "sha256": sha,
            "file": p,
            "weight": float(w),
            "prob": None if probs is None else float(q),
        }
        for f, p, sha, w, q in zip(fvs, spec.vectors, shas, weights, probs if probs is not None else weights)
    ]
    fv = FunctionVector(
        vector=vec,
        label=spec.label or "composite " + " + ".join(f"{w:.2f} {f.relation}" for f, w in zip(fvs, weights)),
        relation=spec.relation,
        model_id=backend.model_id,
        d_model=g.d_model,
        n_layers=g.n_layers,
        layer=layer,
        heads=sorted({tuple(h) for f in fvs for h in f.heads}),
        bias=fvs[0].bias,
        strength=1.0,
        hook_point=backend.hook_point,
        provenance={
            "kind": "composite",
            "parents": parents,
            "weighting": "given" if spec.weights else spec.weighting,
            "source": None
            if spec.weights
            else {"image": spec.source_image, "anchor": spec.source_anchor, "answer": spec.source_answer},
            **backend.provenance(),
        },
    )
    ref = io.sink.vector(fv, Path(spec.out) / "composite.safetensors", io.source)
    yield Progress(1, 1, "composite saved")
    return {
        "vector": ref,
        "layer": layer,
        "weights": {f.relation: float(w) for f, w in zip(fvs, weights)},
        "probs": None if probs is None else {f.relation: float(q) for f, q in zip(fvs, probs)},
    }


# -- applying vectors to an image ----------------------------------------------------------------
def run_apply(spec: ApplySpec, io: JobIO | None = None) -> JobGen:
    """The vectors come from the job's source (store vectors, hash-checked, or files); the result is
    returned (a store run records it in its run row; headless with --out it is also apply.json)."""
    import torch

    from mfv_desktop.fv import add_vector
    from mfv_desktop.fv.analogy import composite_layer

    io = io or folder_io(spec)
    backend = _backend(spec)
    fvs = [_read_vector(io, p, backend).fv for p in spec.vectors]
    if not fvs:
        raise ValueError("pick at least one function vector to apply")
    task = Task("apply", "zeroshot", (), _image_shot(spec.image, spec.anchor, spec.expected or "", "query"))
    check_answers(backend, [task])
    layer = (
        composite_layer([_base(f) for f in fvs], np.full(len(fvs), 1 / len(fvs))) if spec.layer is None else spec.layer
    )
    check_layers(backend, [layer])
    scaled = [f.vector.float() * (f.strength if spec.strength is None else spec.strength) for f in fvs]
    vector = scaled[0]
    for v in scaled[1:]:
        vector = vector + v
    yield Progress(0, 2, "without the vector")
    with torch.no_grad():
        batch = backend.encode([task])
        plain = backend.run(batch)[0].float().softmax(-1)
        yield Progress(1, 2, "with the vector")
        with add_vector(backend, layer, vector):
            steered = backend.run(batch)[0].float().softmax(-1)
    if not bool(torch.isfinite(plain).all() and torch.isfinite(steered).all()):
        strength = "each vector's own strength" if spec.strength is None else f"strength {spec.strength}"
        raise ValueError(
            f"with the vectors at layer {layer} and {strength}, the model's answer probabilities are "
            "not finite numbers; apply them with a smaller --strength"
        )
    ids = list(dict.fromkeys([*plain.topk(spec.top).indices.tolist(), *steered.topk(spec.top).indices.tolist()]))
    bars = sorted(
        (
            {"token": backend.decode_token(i).strip(), "without": float(plain[i]), "with": float(steered[i])}
            for i in ids
        ),
        key=lambda b: -max(b["with"], b["without"]),
    )
    # right or wrong only where the expected answer is known (its first token, as accuracy counts it)
    right = {name: _right(p, batch, spec.expected) for name, p in (("without", plain), ("with", steered))}
    result = {
        "image": spec.image,
        "anchor": spec.anchor,
        "layer": layer,
        "strength": spec.strength,
        "vectors": [{"label": f.label, "relation": f.relation} for f in fvs],
        "without": backend.decode_token(int(plain.argmax())).strip(),
        "with": backend.decode_token(int(steered.argmax())).strip(),
        "bars": bars,
        "expected": spec.expected or None,
        "correct": right,
    }
    if spec.out:  # a store run (its run folder) or a headless one with --out: what it measured, kept
        io.sink.result_file("apply.json", {**result, "provenance": backend.provenance()})
        about = {"layer": layer, "strength": spec.strength, "vectors": result["vectors"]}
        for condition, probs in (("0-shot", plain), ("with vectors", steered)):
            _record_one(io, backend, "+".join(f.relation for f in fvs), condition, task, spec.expected, probs, about)
    yield Progress(2, 2, f"{spec.anchor}: {result['without']} -> {result['with']}")
    return result


def _right(probs, batch, expected: str | None) -> bool | None:
    """Whether the top-1 token is the expected answer's first token (None: no expected answer)."""
    return bool(int(probs.argmax()) == int(batch.answer_ids[0])) if expected else None


# -- analogies -----------------------------------------------------------------------------------
def run_analogy(spec: AnalogySpec, io: JobIO | None = None) -> JobGen:
    io = io or folder_io(spec)
    backend = _backend(spec)
    check_layers(backend, [spec.layer])
    _, parts = _parts(spec.vectors, backend, io)
    if spec.scenes:
        return (yield from _analogy_table(spec, backend, parts, io))
    return (yield from _one_analogy(spec, backend, parts, io))


def _one_analogy(spec: AnalogySpec, backend, parts, io: JobIO) -> JobGen:
    """One user analogy: the composite's answer against 0-shot and 1-shot ICL, with top-5 each."""
    import torch

    from mfv_desktop.fv.analogy import AnalogyItem, solve
    from mfv_desktop.fv.evaluate import top_predictions

    src = _image_shot(spec.source_image, spec.source_anchor, spec.source_answer, "source")
    if not spec.source_answer:
        raise ValueError("the source pair needs its answer B (--source IMAGE:A:B)")
    tgt = _image_shot(spec.target_image, spec.target_anchor, spec.target_answer, "target")
    item = AnalogyItem(
        Task("analogy", "zeroshot", (), src), Task("analogy", "zeroshot", (), tgt), known=bool(spec.target_answer)
    )
    check_answers(backend, [item.source, item.target])
    yield Progress(0, 2, "composite vector")
    r = solve(backend, item, parts, weighting=spec.weighting, temperature=spec.temperature, layer=spec.layer)
    yield Progress(1, 2, "in-context baselines")
    baselines = {}
    expected = spec.target_answer or None
    about = {
        "layer": r.layer,
        "weighting": spec.weighting,
        "source": {"image": spec.source_image, "anchor": spec.source_anchor, "answer": spec.source_answer},
    }
    relation = "analogy"
    for name, task in (("0-shot", item.target), ("1-shot ICL", item.one_shot())):
        with torch.no_grad():
            batch = backend.encode([task])
            logits = backend.run(batch)
        top = top_predictions(backend, logits)[0]
        probs = logits[0].float().softmax(-1)
        baselines[name] = {
            "answer": top[0][0],
            "prob": top[0][1],
            "top": top,
            "correct": _right(probs, batch, expected),
        }
        _record_one(io, backend, relation, name, task, expected, probs, about)
    _record_one(io, backend, relation, "composite", item.target, expected, None, about, r)
    result = {
        "weights": {p.relation or str(i): float(w) for i, (p, w) in enumerate(zip(parts, r.weights))},
        "probs": {p.relation or str(i): float(q) for i, (p, q) in enumerate(zip(parts, r.probs))},
        "layer": r.layer,
        "composite": {
            "answer": r.prediction_text,
            "prob": r.prediction_prob,
            "top": r.top,
            "correct": r.correct,
            "answer_prob": r.answer_prob,
        },
        **baselines,
        "expected": expected,
    }
    write_json(io.sink.folder / "analogy.json", result)
    yield Progress(2, 2, f"D = {r.prediction_text}")
    return result


def _record_one(io: JobIO, backend, relation: str, condition: str, task: Task, expected, probs, about, r=None):
    """One question as a one-task group (an Apply image; an Analogy's target, with the source pair
    as its demonstration for ICL): the model's answer from its answer probabilities `probs`, or the
    composite's AnalogyResult `r`. With no expected answer the task's answer is "" and the answer
    is not counted right."""
    import dataclasses

    from mfv_desktop.store.prompts import Answer

    from .prompts import one_task_set

    known = bool(expected)
    t = Task(relation, task.kind, task.demos, dataclasses.replace(task.query, answer=expected or ""))
    if r is not None:
        got = Answer(0, r.prediction_text.strip(), bool(known and r.correct), r.answer_prob if known else None)
    else:
        top, answer_id = int(probs.argmax()), backend.answer_token(expected) if known else None
        got = Answer(
            0,
            backend.decode_token(top).strip(),
            known and top == answer_id,
            None if answer_id is None else float(probs[answer_id]),
        )
    ts = one_task_set(t, "clean" if t.demos else "zeroshot")
    io.sink.prompt_group(relation, condition, ts, backend.template, [got], {**about, "expected_known": known})


def analogy_conditions(
    backend,
    zeroshot: Sequence[Task],
    composites: dict[str, Sequence],
    ks: Sequence[int],
    seed: int,
    batch_size: int,
    weighting: str = "probability",
    temperature: float = 1.0,
    layer: int | None = None,
) -> JobGen:
    """Accuracy per relation of one-shot analogies on `zeroshot`'s tasks: 0-shot, K-shot ICL for
    each K, and each named set of base vectors as a composite. Returns rows and mean weights."""
    from mfv_desktop.fv import evaluate
    from mfv_desktop.fv.analogy import analogy_items, k_shot, solve_all

    items = analogy_items(zeroshot, seed)
    if not items:
        raise ValueError("analogies need at least two scenes of a relation")
    check_answers(backend, [i.target for i in items] + [i.source for i in items])
    conds: list[tuple[str, list[Task] | None, Sequence]] = [("0-shot", [i.target for i in items], ())]
    for k in ks:
        conds.append(
            (f"{k}-shot ICL", [i.one_shot() for i in items] if k == 1 else k_shot(items, zeroshot, k, seed), ())
        )
    conds += [(name, None, parts) for name, parts in composites.items()]
    rows, mean_weights = [], {}
    #: per condition, what each item's question was (the target's, or its K-shot prompt) and the answers
    answered: dict[str, tuple[list[Task], list[str], np.ndarray, list[float | None]]] = {}
    n = len(conds)
    for j, (name, tasks, parts) in enumerate(conds):
        if tasks is not None:
            r = yield from as_part(evaluate(backend, tasks, batch_size), j / n, 1 / n, name)
            correct = r.correct
            answered[name] = (list(tasks), r.predictions, correct, [float(x) for x in r.answer_probs])
        else:
            res = yield from as_part(
                solve_all(
                    backend,
                    items,
                    parts,
                    weighting=weighting,  # type: ignore[arg-type]
                    temperature=temperature,
                    layer=layer,
                    batch_size=batch_size,
                ),
                j / n,
                1 / n,
                name,
            )
            correct = np.array([x.correct for x in res])
            answered[name] = (
                [i.target for i in items],
                [x.prediction_text for x in res],
                correct,
                [x.answer_prob for x in res],
            )
            w = np.array([x.weights for x in res])
            mean_weights[name] = {
                rel: dict(
                    zip(
                        [p.relation for p in parts],
                        w[[i.target.relation == rel for i in items]].mean(0).round(3).tolist(),
                    )
                )
                for rel in dict.fromkeys(i.target.relation for i in items)
            }
        for rel in dict.fromkeys(i.target.relation for i in items):
            sel = np.array([i.target.relation == rel for i in items])
            rows.append([rel, name, int(sel.sum()), round(float(np.mean(correct[sel])), 4)])
    return {"rows": rows, "mean_weights": mean_weights, "n": len(items), "answered": answered}


def _record_table(io: JobIO, backend, answered) -> None:
    """An analogy table's conditions as groups, one per relation and condition: each item's question
    (the target, or its K-shot prompt) with the answer it got."""
    from mfv_desktop.tasks import TaskSet

    from .prompts import answers

    for name, (tasks, words, correct, probs) in answered.items():
        for rel in dict.fromkeys(t.relation for t in tasks):
            idx = [i for i, t in enumerate(tasks) if t.relation == rel]
            sel = [tasks[i] for i in idx]
            spec = TaskSpec(relations=(rel,), k=sel[0].k, kind="clean" if sel[0].k else "zeroshot")
            got = answers([words[i] for i in idx], [bool(correct[i]) for i in idx], [probs[i] for i in idx])
            io.sink.prompt_group(rel, name, TaskSet(spec, sel), backend.template, got, {"analogy": True})


def _analogy_table(spec: AnalogySpec, backend, parts, io: JobIO) -> JobGen:
    zs = build_tasks(
        io.source.scenes(spec.scenes),
        TaskSpec(
            relations=spec.relations, kind="zeroshot", seed=spec.seed, split=spec.split, max_per_relation=spec.n_prompts
        ),
    ).tasks
    res = yield from analogy_conditions(
        backend,
        zs,
        {"composite": parts},
        spec.ks,
        spec.seed,
        spec.batch_size,
        spec.weighting,
        spec.temperature,
        spec.layer,
    )
    _record_table(io, backend, res["answered"])
    header = ["relation", "condition", "n", "accuracy"]
    out = io.sink.folder
    write_csv(out / "evaluation.csv", header, res["rows"])
    records = [dict(zip(header, r)) for r in res["rows"]]
    write_json(
        out / "evaluation.json",
        {
            "rows": records,
            "split": spec.split or "",
            "mean_weights": res["mean_weights"],
            "provenance": backend.provenance(),
        },
    )
    io.sink.evaluations(records, backend.provenance(), spec.split or "")
    return {"rows": records, "mean_weights": res["mean_weights"], "n": res["n"]}
