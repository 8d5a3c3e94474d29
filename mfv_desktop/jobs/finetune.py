"""Fine-tuned function vectors (FFV): only the vector trains, the model frozen; the best epoch on
held-out scenes is kept, and an interrupted run resumes from its last epoch."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from mfv_desktop.specs import FinetuneSpec
from mfv_desktop.tasks import Task, TaskSpec

from .base import JobGen, write_json
from .io import JobIO, folder_io, save_arrays
from .results import FinetuneResult
from .science import (
    _backend,
    _read_vector,
    build_tasks,
    check_answers,
    check_layers,
    write_csv,
)

__all__ = ["FinetuneSpec", "finetune_config", "run_finetune"]


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
