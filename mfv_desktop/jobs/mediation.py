"""Mediation jobs: mean head activations and the average indirect effect of every head per relation
(`run_aie`, checkpointed and resumable), and its quick linear estimate by attribution patching
(`run_preview`)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mfv_desktop.scenes import path_part
from mfv_desktop.specs import AIESpec, MediationSpec, PreviewSpec
from mfv_desktop.tasks import TaskSet, TaskSpec

from .base import Gen, JobGen, write_json
from .io import AVERAGING_KEYS as AVERAGING
from .io import JobIO, Scenes, folder_io, save_arrays
from .results import AIEJobResult
from .science import _backend, build_tasks, check_answers, load_arrays, write_csv

__all__ = ["AVERAGING", "averaging_text", "measured_text", "run_aie", "run_preview"]


def _mediation_tasks(spec: MediationSpec, scenes: Scenes, rel: str) -> tuple[TaskSet, TaskSet]:
    """The clean and the corrupted prompts of one relation for an AIE or preview spec, in pairs
    (tasks.check_paired)."""
    base = TaskSpec(relations=(rel,), k=spec.k, seed=spec.seed, split=spec.split, max_per_relation=spec.n_prompts)
    return (
        build_tasks(scenes, replace(base, kind="clean")),
        build_tasks(scenes, replace(base, kind="corrupted", corruption=spec.corruption)),
    )


#: what an AIE result records of the corrupted prompts it averages over (fields of fv.Matched)
def _averaged_over(sel) -> dict[str, Any]:
    return {k: getattr(sel, k) for k in AVERAGING}


def averaging_text(info: dict[str, Any]) -> str:
    """How an AIE result was averaged, for listings: from its recorded matched_only, n_matched,
    n_corrupted and n_prompts (a result recorded before the choice existed averaged over all)."""
    n = info.get("n_corrupted", info.get("n_prompts"))
    if not info.get("matched_only"):
        return f"all {n} corrupted prompts"
    if not info.get("n_matched"):
        return f"all {n} corrupted prompts (none matched)"
    return f"{info['n_matched']} of {n} matched prompts"


def measured_text(info: dict[str, Any]) -> str:
    """What an AIE map was measured on, in a sentence for its caption: the corrupted prompts kept and
    why, the clean prompts the mean activations are over, the clean accuracy and the corrupted
    baseline (mean P(answer | corrupted)). `info`: an AIE result's stored metadata (the artifact's
    meta with the row's clean_accuracy and averaging fields); absent fields are left out."""
    n = info.get("n_corrupted", info.get("n_prompts"))
    if not info.get("matched_only"):
        kept = f"averaged over all {n} corrupted prompts"
    elif not info.get("n_matched"):
        kept = f"averaged over all {n} corrupted prompts (no clean prompt was answered, so none could be matched)"
    else:
        kept = f"averaged over {info['n_matched']} of {n} corrupted prompts whose clean prompt was answered"
    parts = [kept]
    if info.get("mean_over") is not None:
        which = "answered clean prompts" if info.get("only_correct") else "clean prompts (all of them)"
        parts.append(f"mean activations over {info['mean_over']} {which}")
    acc = info.get("clean_accuracy")
    if acc is not None:
        answered = f" ({round(acc * n)} of {n})" if isinstance(n, int) and n else ""
        parts.append(f"clean accuracy {acc:.0%}{answered}")
    if info.get("base_prob") is not None:
        parts.append(f"corrupted baseline P(answer) {info['base_prob']:.3f}")
    return "; ".join(parts)


def _mediation(method: str, backend):
    """(the AIE function for a method name, the method it is: "fast" falls back to the reference loop
    on a backend without the last-position recompute)."""
    from mfv_desktop.fv import average_indirect_effect
    from mfv_desktop.fv.fast import fast_average_indirect_effect, supports_fast

    if method == "reference" or (method == "fast" and not supports_fast(backend)):
        return average_indirect_effect, "reference"
    if method == "fast":
        return fast_average_indirect_effect, "fast"
    raise ValueError(f"unknown AIE method {method!r}: use fast or reference")


def run_aie(spec: AIESpec, io: JobIO | None = None) -> Gen[AIEJobResult]:
    """Each relation's result goes through the sink when it is finished; the running sums of the
    relation being measured are checkpointed in the sink's folder (the run resumes from them)."""
    from mfv_desktop.fv import matched_prompts, mean_head_activations, within

    io = io or folder_io(spec)
    backend = _backend(spec)
    aie_fn, method = _mediation(spec.method, backend)
    provenance = backend.provenance()  # hashes the model's files: once per job
    scenes = io.source.scenes(spec.scenes)
    n_rel = len(spec.relations)
    summary: dict[str, Any] = {"relations": {}}
    for i, rel in enumerate(spec.relations):
        clean, corrupted = _mediation_tasks(spec, scenes, rel)
        key = {
            "clean_tasks_hash": clean.hash,
            "corrupted_tasks_hash": corrupted.hash,
            "matched_only": spec.matched_only,
            **{k: provenance[k] for k in _SAME_MODEL},
        }
        folder = io.sink.folder / path_part(rel)  # a relation name is user text: never a path of its own
        done = io.sink.finished_aie(rel, key)
        if done is not None:  # an interrupted job resumes after its last finished relation
            summary["relations"][rel] = done
            continue
        check_answers(backend, clean.tasks)
        n = len(clean.tasks)
        total = 2 * n * n_rel
        checkpoint = folder / "partial.safetensors"
        mean, start = _partial_aie(checkpoint, key)
        if mean is None:
            mean = yield from within(
                mean_head_activations(backend, clean.tasks, spec.batch_size, spec.only_correct),
                2 * n * i,
                total,
                f"{rel}: mean activations",
                {"relation": rel},
            )
        _record_clean(io, backend, rel, clean, mean)
        # the same prompts when a run resumes: the clean answers are checkpointed with the mean
        sel = matched_prompts(clean.tasks, corrupted.tasks, mean.correct, spec.matched_only)
        ie = aie_fn(backend, sel.prompts, mean.mean, spec.batch_size, start=start)
        res = yield from within(
            _checkpointing(ie, checkpoint, mean, key),
            2 * n * i + n,
            total,
            f"{rel}: indirect effects",
            {"relation": rel},
        )
        meta = {
            "relation": rel,
            "k": spec.k,
            "n_prompts": res.n_prompts,
            "base_prob": res.base_prob,
            "clean_accuracy": mean.clean_accuracy,
            "mean_over": mean.n_used,
            "only_correct": mean.only_correct,
            **_averaged_over(sel),
            "notes": mean.notes + sel.notes,
            "clean_tasks_hash": clean.hash,
            "corrupted_tasks_hash": corrupted.hash,
            "corruption": spec.corruption,
            "method": method,
            "provenance": provenance,
        }
        effects = _record_corrupted(io, backend, rel, corrupted, sel, res, spec)
        io.sink.aie_result(rel, res.aie, mean.mean.numpy(), meta, res.to_json(), effects)
        summary["relations"][rel] = {**res.to_json(), "clean_accuracy": mean.clean_accuracy, **_averaged_over(sel)}
    return AIEJobResult(summary["relations"])


def _record_clean(io: JobIO, backend, rel: str, clean: TaskSet, mean) -> None:
    """The clean prompts' group: the model's word on each, right or not, P(answer)."""
    from .prompts import answers

    words = [backend.decode_token(int(t)) for t in mean.predicted]
    io.sink.prompt_group(
        rel,
        "clean",
        clean,
        backend.template,
        answers(words, mean.correct, mean.answer_probs),
        {"k": clean.spec.k, "mean_over": mean.n_used, "only_correct": mean.only_correct},
    )


def _record_corrupted(io: JobIO, backend, rel: str, corrupted: TaskSet, sel, res, spec: AIESpec):
    """The group of corrupted prompts the AIE averages over (the model's word on each, right or not
    against the true answer, P(answer) = the baseline); returns their per-prompt effects for the sink
    (None for a result resumed from sums kept without them)."""
    from .prompts import answers

    if res.prompt_effects is None:
        return None
    idx = np.asarray(sel.indices[: res.n_prompts], np.int64)
    words = [backend.decode_token(int(t)) for t in res.predicted]
    io.sink.prompt_group(
        rel,
        "corrupted",
        corrupted,
        backend.template,
        answers(words, res.correct, res.base_probs, idx.tolist()),
        {"k": spec.k, "corruption": spec.corruption, **_averaged_over(sel)},
    )
    return corrupted.hash, idx, res.prompt_effects


#: provenance that must match for saved work to be reused
_SAME_MODEL = ("model_id", "files", "dtype", "template")
#: seconds between checkpoints of a relation's running sums
CHECKPOINT_EVERY_S = 2.0


def _partial_aie(path: Path, key: dict[str, Any]):
    """(mean activations, partial AIE) checkpointed by an interrupted run with the same key, else (None, None)."""

    import torch
    from safetensors import safe_open

    from mfv_desktop.fv.mediation import AIEResult, MeanActivations

    try:  # a checkpoint written before prompts were kept one by one starts the relation over
        with safe_open(str(path), framework="numpy") as f:
            meta = json.loads(f.metadata()["meta"])
            ie_sum, mean = f.get_tensor("ie_sum").astype(np.float64), f.get_tensor("mean")
            prompts = [f.get_tensor(k) for k in PROMPT_ARRAYS]
        m = meta["mean"]
        clean = np.array(m["predicted"], np.int64), np.array(m["answer_probs"], np.float32)
    except Exception:  # noqa: BLE001 - no checkpoint, or a damaged one: start the relation over
        return None, None
    if meta.get("key") != json.loads(json.dumps(key, default=str)):
        return None, None
    n = meta["n_prompts"]
    means = MeanActivations(
        torch.from_numpy(mean).float(),
        m["n_used"],
        m["n_total"],
        m["clean_accuracy"],
        m["only_correct"],
        m["notes"],
        np.array(m["correct"], bool),
        *clean,
    )
    effects, probs, predicted, correct = prompts
    if len(effects) != n:
        return None, None
    return means, AIEResult(
        ie_sum / n, n, meta["base_sum"] / n, ie_sum, effects, probs, predicted, correct.astype(bool)
    )


#: a checkpoint's per-prompt arrays, in the order of fv.mediation.join_prompts
PROMPT_ARRAYS = ("prompt_effects", "base_probs", "predicted", "correct")


def _checkpointing(gen, path: Path, mean, key: dict[str, Any]):
    """Pass a running AIE computation through, saving its running sums (and what each prompt gave)
    every few seconds."""
    from mfv_desktop.fv.mediation import join_prompts

    last = 0.0  # the first batch is saved at once, then every few seconds
    about_mean = {
        "n_used": mean.n_used,
        "n_total": mean.n_total,
        "clean_accuracy": mean.clean_accuracy,
        "only_correct": mean.only_correct,
        "notes": mean.notes,
        "correct": mean.correct.tolist(),
        "predicted": mean.predicted.tolist(),
        "answer_probs": mean.answer_probs.tolist(),
    }
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            path.unlink(missing_ok=True)
            return stop.value
        if time.time() - last >= CHECKPOINT_EVERY_S and "prompts" in p.partial:
            effects, probs, predicted, correct = join_prompts(*p.partial["prompts"])
            save_arrays(
                path,
                {
                    "ie_sum": p.partial["ie_sum"],
                    "mean": mean.mean.double().numpy(),
                    **dict(zip(PROMPT_ARRAYS, (effects, probs, predicted, correct.astype(np.uint8)))),
                },
                {
                    "key": key,
                    "n_prompts": p.partial["n_prompts"],
                    "base_sum": p.partial["base_sum"],
                    "mean": about_mean,
                },
                dtype=None,
            )
            last = time.time()
        yield p


def run_preview(spec: PreviewSpec, io: JobIO | None = None) -> JobGen:
    from mfv_desktop.fv import matched_prompts, mean_head_activations, within
    from mfv_desktop.fv.fast import attribution_preview, rank_correlation

    io = io or folder_io(spec)
    backend = _backend(spec)
    provenance = backend.provenance()
    scenes = io.source.scenes(spec.scenes)
    out = io.sink.folder
    summary: dict[str, Any] = {"relations": {}}
    n_rel = len(spec.relations)
    for i, rel in enumerate(spec.relations):
        clean, corrupted = _mediation_tasks(spec, scenes, rel)
        check_answers(backend, clean.tasks)
        n = len(clean.tasks)
        mean = yield from within(
            mean_head_activations(backend, clean.tasks, spec.batch_size, spec.only_correct),
            2 * n * i,
            2 * n * n_rel,
            f"{rel}: mean activations",
            {"relation": rel},
        )
        sel = matched_prompts(clean.tasks, corrupted.tasks, mean.correct, spec.matched_only)
        res = yield from within(
            attribution_preview(backend, sel.prompts, mean.mean, spec.batch_size),
            2 * n * i + n,
            2 * n * n_rel,
            f"{rel}: attribution preview",
            {"relation": rel},
        )
        info: dict[str, Any] = {
            "relation": rel,
            "k": spec.k,
            "clean_accuracy": mean.clean_accuracy,
            "clean_tasks_hash": clean.hash,
            "corrupted_tasks_hash": corrupted.hash,
            **_averaged_over(sel),
            "notes": mean.notes + sel.notes,
            **res.to_json(),
        }
        folder = out / path_part(rel)
        exact = Path(spec.compare) / path_part(rel) / "aie.safetensors" if spec.compare else None
        if exact is not None and exact.is_file():
            info["rank_correlation"] = rank_correlation(res.aie, load_arrays(exact)["aie"])
        save_arrays(folder / "preview.safetensors", {"aie_estimate": res.aie}, {**info, "provenance": provenance})
        write_csv(
            folder / "preview.csv",
            ["layer", *[f"head{h}" for h in range(res.aie.shape[1])]],
            [[layer, *map(float, row)] for layer, row in enumerate(res.aie)],
        )
        write_json(folder / "preview.json", {**info, "provenance": provenance})
        summary["relations"][rel] = info
    return summary


# -- function vectors ---------------------------------------------------------------------------
