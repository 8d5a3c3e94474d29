"""Jobs on function vectors beyond extraction: fine-tuning, composing, solving analogies."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mfv_desktop.progress import Progress, as_part
from mfv_desktop.specs import AnalogySpec, ApplySpec, ComposeSpec, FinetuneSpec
from mfv_desktop.tasks import Shot, Task, TaskSpec

from .base import JobGen, write_json
from .io import JobIO, folder_io, save_arrays
from .results import FinetuneResult
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
def finetune_config(spec: FinetuneSpec):
    from dataclasses import replace

    from mfv_desktop.fv.finetune import PRESETS

    if spec.preset not in PRESETS:
        raise ValueError(f"unknown fine-tuning preset {spec.preset!r}: use {' or '.join(PRESETS)}")
    preset = PRESETS[spec.preset]  # with the spec's values where it gives them
    return replace(
        preset,
        seed=spec.seed,
        lr=preset.lr if spec.lr is None else spec.lr,
        epochs=preset.epochs if spec.epochs is None else spec.epochs,
        batch_size=preset.batch_size if spec.train_batch_size is None else spec.train_batch_size,
    )


def _held_out(scene_id: str, fraction: float) -> bool:
    return int(hashlib.sha256(scene_id.encode()).hexdigest()[:8], 16) / 16**8 < fraction


def run_finetune(spec: FinetuneSpec, io: JobIO | None = None) -> JobGen:
    """Writes the best vector so far to ffv.safetensors in the sink's folder after every epoch that
    improves it (so a cancelled job keeps it) and its state to state.safetensors (so it resumes); the
    best vector goes through the sink at the end."""
    from mfv_desktop.fv.finetune import FinetuneState, finetune_vector, random_init
    from mfv_desktop.fv.vector_file import FunctionVector

    io = io or folder_io(spec)
    backend = _backend(spec)
    g = backend.geometry
    loaded = _read_vector(io, spec.vector, backend) if spec.vector else None
    base = loaded.fv if loaded else None
    relation = spec.relation or (base.relation if base else "")
    if not relation:
        raise ValueError("say which relation to fine-tune for (--relation), or start from a vector")
    layer = spec.layer if spec.layer is not None else (base.layer if base else None)
    if layer is None:
        raise ValueError("a random start needs an injection layer (--layer)")
    check_layers(backend, [layer])
    if spec.init == "extracted":
        if base is None:
            raise ValueError("init 'extracted' needs a vector to start from (--vector), or use --init random")
        init = base.vector * base.strength
    elif spec.init == "random":
        init = random_init(g.d_model, float((base.vector * base.strength).norm()) if base else 1.0, spec.seed)
    else:
        raise ValueError(f"unknown init {spec.init!r}: use extracted or random")
    config = finetune_config(spec)

    scenes = io.source.scenes(spec.scenes)

    def zeroshot(split: str | None, n: int) -> list[Task]:
        return build_tasks(
            scenes, TaskSpec(relations=(relation,), kind="zeroshot", seed=spec.seed, split=split, max_per_relation=n)
        ).tasks

    if spec.val_split is not None:
        train, val = zeroshot(spec.split, spec.n_prompts), zeroshot(spec.val_split, spec.n_prompts)
    else:
        pool = zeroshot(spec.split, None)  # type: ignore[arg-type]
        val = [t for t in pool if _held_out(t.query.scene_id, spec.val_fraction)]
        train = [t for t in pool if not _held_out(t.query.scene_id, spec.val_fraction)]
        n_val = max(1, round(spec.n_prompts * spec.val_fraction))
        train, val = train[: spec.n_prompts - n_val], val[:n_val]
    check_answers(backend, train + val)
    provenance = backend.provenance()
    key = {
        "init": spec.init,
        "vector": loaded.sha256 if loaded else None,
        "relation": relation,
        "layer": layer,
        "config": config.__dict__,
        "train": [t.query.scene_id for t in train],
        "val": [t.query.scene_id for t in val],
        "model": {k: provenance[k] for k in ("model_id", "files", "dtype")},
    }
    key = json.loads(json.dumps(key, default=str))
    out = io.sink.folder
    state_file, vector_file = out / "state.safetensors", out / "ffv.safetensors"
    state = _load_state(state_file, key)

    def best_vector(st: FinetuneState) -> FunctionVector:
        return FunctionVector(
            vector=st.best,
            label=spec.label or f"{relation} FFV",
            relation=relation,
            model_id=backend.model_id,
            d_model=g.d_model,
            n_layers=g.n_layers,
            layer=layer,
            heads=list(base.heads) if base else [],
            bias=base.bias if base else "none",
            strength=1.0,
            hook_point=backend.hook_point,
            provenance={
                "kind": "finetuned",
                "init": spec.init,
                "from_vector": spec.vector or None,
                "from_sha256": key["vector"],
                "from_label": base.label if base else None,
                "config": config.__dict__,
                "best_epoch": st.best_epoch,
                "val_accuracy": st.best_accuracy,
                "epochs_done": st.epoch,
                "n_train": len(train),
                "n_val": len(val),
                **provenance,
            },
        )

    def save_best(st: FinetuneState) -> None:
        best_vector(st).save(vector_file)

    best_epoch = state.best_epoch if state else None
    gen = finetune_vector(backend, train, val, layer, init, config, state)
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            state = stop.value
            break
        st = p.partial.get("state")
        if st is not None:  # an epoch ended: save before anyone can cancel at this yield
            if st.best_epoch != best_epoch or not vector_file.is_file():
                save_best(st)
                best_epoch = st.best_epoch
            _save_state(state_file, st, key)
            p.partial.pop("state")
        yield p
    history = state.history
    write_csv(
        out / "history.csv",
        ["epoch", "train_loss", "val_accuracy", "val_loss"],
        [[h["epoch"], h["train_loss"], h["val_accuracy"], h["val_loss"]] for h in history],
    )
    ref = io.sink.vector(best_vector(state), vector_file, io.source)
    summary = {
        "vector": ref,
        "relation": relation,
        "layer": layer,
        "best_epoch": state.best_epoch,
        "val_accuracy": state.best_accuracy,
        "start_val_accuracy": history[0]["val_accuracy"],
        "n_train": len(train),
        "n_val": len(val),
        "history": history,
    }
    write_json(out / "finetune.json", {**summary, "config": config.__dict__, "provenance": provenance})
    state_file.unlink(missing_ok=True)
    return FinetuneResult(**summary)


def _save_state(path: Path, st, key: dict) -> None:
    save_arrays(
        path,
        {
            "vector": st.vector.numpy(),
            "best": st.best.numpy(),
            "exp_avg": st.exp_avg.numpy(),
            "exp_avg_sq": st.exp_avg_sq.numpy(),
        },
        {"key": key, **st.meta()},
    )


def _load_state(path: Path, key: dict):
    """The state an interrupted fine-tuning with the same key saved, else None."""
    import torch
    from safetensors import safe_open

    from mfv_desktop.fv.finetune import FinetuneState

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads(f.metadata()["meta"])
            arrays = {k: torch.from_numpy(f.get_tensor(k)) for k in ("vector", "best", "exp_avg", "exp_avg_sq")}
    except Exception:  # noqa: BLE001 - none, or a damaged one: start over
        return None
    if meta.pop("key") != key:
        return None
    return FinetuneState(
        vector=arrays["vector"], best=arrays["best"], exp_avg=arrays["exp_avg"], exp_avg_sq=arrays["exp_avg_sq"], **meta
    )


# -- composite vectors -----------------------------------------------------------------------------
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
    task = Task("apply", "zeroshot", (), _image_shot(spec.image, spec.anchor, "", "query"))
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
    result = {
        "image": spec.image,
        "anchor": spec.anchor,
        "layer": layer,
        "strength": spec.strength,
        "vectors": [{"label": f.label, "relation": f.relation} for f in fvs],
        "without": backend.decode_token(int(plain.argmax())).strip(),
        "with": backend.decode_token(int(steered.argmax())).strip(),
        "bars": bars,
    }
    if spec.out:
        io.sink.result_file("apply.json", {**result, "provenance": backend.provenance()})
    yield Progress(2, 2, f"{spec.anchor}: {result['without']} -> {result['with']}")
    return result


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
    for name, task in (("0-shot", item.target), ("1-shot ICL", item.one_shot())):
        with torch.no_grad():
            top = top_predictions(backend, backend.run(backend.encode([task])))[0]
        baselines[name] = {"answer": top[0][0], "prob": top[0][1], "top": top}
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
    }
    write_json(io.sink.folder / "analogy.json", result)
    yield Progress(2, 2, f"D = {r.prediction_text}")
    return result


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
    n = len(conds)
    for j, (name, tasks, parts) in enumerate(conds):
        if tasks is not None:
            r = yield from as_part(evaluate(backend, tasks, batch_size), j / n, 1 / n, name)
            correct = r.correct
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
    return {"rows": rows, "mean_weights": mean_weights, "n": len(items)}


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
