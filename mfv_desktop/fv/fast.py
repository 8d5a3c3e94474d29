"""Fast, exact causal mediation and layer sweeps, and a linear preview (method.md §3-4).

Patching head (l, h) at the last token, or adding a vector to the residual stream after layer L at
the last token, changes nothing at earlier positions or in lower layers. So each batch of prompts
runs once (the backend's `last_position`: the key/value cache of every layer, the latents' keys
and values, every layer's state at the last position), and every intervention is a *column* that
recomputes the last position alone from the layer after the intervention up. Columns of all heads
(or of all layers and strengths) run together, as many at once as memory allows. The result equals
the reference loops (mediation.average_indirect_effect, vectors.layer_sweep: one full forward per
head or layer) up to float rounding.

The attribution-patching preview estimates every head's indirect effect from one forward and one
backward pass per batch: the gradient of the answer probability with respect to each head's
last-token output, times the difference between the mean activation and the corrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Sequence

import numpy as np
import torch

from mfv_desktop.backends import Backend
from mfv_desktop.progress import Progress
from mfv_desktop.tasks import Task

from .evaluate import EvalResult
from .mediation import AIEResult, accumulate_effects, effects_shard
from .shards import Shard, map_batches, numpy_of
from .vectors import SweepResult

#: the most columns one recomputation takes at once
MAX_COLUMNS = 4096


def supports_fast(backend: Backend) -> bool:
    """The backend declares the last-position recompute (`Backend.supports_last_position`)."""
    return backend.supports_last_position


def memory_budget(device: torch.device) -> int:
    """Bytes the fast path may use at once: half the free GPU memory, or a quarter of the
    available RAM (at most 2 GiB) on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        avail = 8 << 30
    return int(min(avail // 4, 2 << 30))


def _columns_per_run(backend: Backend, last, max_columns: int | None) -> int:
    if max_columns:
        return max_columns
    return int(max(1, min(MAX_COLUMNS, memory_budget(backend.device) // max(1, last.column_bytes()))))


def _probs(logits: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """P(answer) from logits (P, C, V) and answers (P,): (P, C)."""
    idx = answers[:, None, None].expand(-1, logits.shape[1], 1)
    return logits.softmax(-1).gather(2, idx)[..., 0]


@torch.no_grad()
def fast_effects(backend: Backend, tasks: list[Task], mean: np.ndarray, max_columns: int | None = None) -> Shard:
    """One batch of corrupted prompts: the batch run once, then every head's column recomputed."""
    g = backend.geometry
    n_cols = g.n_layers * g.n_heads  # column j: layer j // n_heads, head j % n_heads (sorted by layer)
    means = torch.from_numpy(mean).to(backend.device, backend.dtype)
    batch = backend.encode(tasks)
    last = backend.last_position(batch)
    base = _probs(last.base_logits[:, None], batch.answer_ids)[:, 0]
    step = _columns_per_run(backend, last, max_columns)
    ie = torch.zeros(n_cols, dtype=torch.float64)
    per = torch.zeros(len(base), n_cols, device=base.device, dtype=base.dtype)
    for s in range(0, n_cols, step):
        cols = torch.arange(s, min(s + step, n_cols))
        layers, heads = cols // g.n_heads, cols % g.n_heads
        p = _probs(last.patched_heads(layers, heads, means[layers, heads]), batch.answer_ids)
        d = p - base[:, None]
        ie[cols] = d.sum(0).double().cpu()
        per[:, cols.to(per.device)] = d
    return effects_shard(
        ie.view(g.n_layers, g.n_heads).numpy(),
        base,
        per.view(-1, g.n_layers, g.n_heads),
        last.base_logits.argmax(-1),
        batch.answer_ids,
    )


def fast_average_indirect_effect(
    backend: Backend,
    corrupted: Sequence[Task],
    mean: torch.Tensor,
    batch_size: int = 16,
    start: AIEResult | None = None,
    max_columns: int | None = None,
) -> Generator[Progress, None, AIEResult]:
    """The same AIE as mediation.average_indirect_effect (same arguments, same progress), fast."""
    return (
        yield from accumulate_effects(
            backend, corrupted, batch_size, start, fast_effects, mean=numpy_of(mean), max_columns=max_columns
        )
    )


@torch.no_grad()
def sweep_batch(
    backend: Backend,
    tasks: list[Task],
    vector: np.ndarray,
    c_layer: np.ndarray,
    c_scale: np.ndarray,
    max_columns: int | None = None,
) -> Shard:
    """One batch of a fast sweep: the prompts without the vector (top-1 token, P(answer)) and under
    each column (the vector at layer c_layer[j] times c_scale[j]): (columns, B) top-1 tokens and P(answer)."""
    batch = backend.encode(tasks)
    last = backend.last_position(batch)
    answers = batch.answer_ids
    base = last.base_logits
    layers, scales, v = torch.from_numpy(c_layer), torch.from_numpy(c_scale), torch.from_numpy(vector)
    top = np.zeros((len(c_layer), len(tasks)), np.int64)
    prob = np.zeros((len(c_layer), len(tasks)))
    step = _columns_per_run(backend, last, max_columns)
    for s in range(0, len(c_layer), step):
        cols = slice(s, min(s + step, len(c_layer)))
        logits = last.added(layers[cols], scales[cols], v)
        top[cols] = logits.argmax(-1).T.cpu().numpy()
        prob[cols] = _probs(logits, answers).T.cpu().numpy()
    return {
        "answers": answers.cpu().numpy().astype(np.int64),
        "base_top": base.argmax(-1).cpu().numpy().astype(np.int64),
        "base_prob": _probs(base[:, None], answers)[:, 0].cpu().numpy(),
        "top": top,
        "prob": prob,
    }


def fast_layer_sweep(
    backend: Backend,
    tasks: Sequence[Task],
    vector: torch.Tensor,
    layers: Sequence[int] | None = None,
    strengths: Sequence[float] = (1.0,),
    batch_size: int = 16,
    max_columns: int | None = None,
) -> Generator[Progress, None, SweepResult]:
    """The same sweep as vectors.layer_sweep: accuracy with the vector at each layer and strength."""
    if vector.shape[-1] != backend.geometry.d_model:
        raise ValueError(
            f"vector has {vector.shape[-1]} dims, model {backend.model_id} has "
            f"d_model={backend.geometry.d_model}: it was made for another model"
        )
    layers = list(range(backend.geometry.n_layers)) if layers is None else list(layers)
    strengths = list(strengths)
    # columns sorted by layer; column (layer j, strength i) is condition i * len(layers) + j
    order = sorted((layer, j, i) for i in range(len(strengths)) for j, layer in enumerate(layers))
    c_layer = np.array([o[0] for o in order], np.int64)
    c_scale = np.array([strengths[o[2]] for o in order], np.float32)
    c_cond = np.array([o[2] * len(layers) + o[1] for o in order])
    correct = np.zeros((len(order), len(tasks)), bool)
    prob = np.zeros((len(order), len(tasks)))
    top = np.zeros((len(order), len(tasks)), np.int64)  # each condition's top-1 token on each prompt
    base_correct, base_prob = np.zeros(len(tasks), bool), np.zeros(len(tasks))
    preds: list[str] = []
    done = 0
    vec = numpy_of(vector)
    for chunk, b in map_batches(
        backend, tasks, batch_size, sweep_batch, vector=vec, c_layer=c_layer, c_scale=c_scale, max_columns=max_columns
    ):
        rows = slice(done, done + len(chunk))
        base_correct[rows] = b["base_top"] == b["answers"]
        base_prob[rows] = b["base_prob"]
        preds.extend(backend.decode_token(int(t)) for t in b["base_top"])
        correct[c_cond, rows] = b["top"] == b["answers"][None]
        top[c_cond, rows] = b["top"]
        prob[c_cond, rows] = b["prob"]
        done += len(chunk)
        acc = correct[:, :done].mean(1).reshape(len(strengths), len(layers))
        yield Progress(
            done,
            len(tasks),
            "layer sweep",
            {"layers": layers, "strengths": strengths, "accuracy": acc.tolist(), "n": done},  # n: prompts so far
        )
    n = len(tasks)
    baseline = EvalResult(
        n,
        float(base_correct.mean()) if n else 0.0,
        float(base_prob.mean()) if n else 0.0,
        preds,
        base_correct,
        base_prob,
    )
    if not n:
        return SweepResult(layers, strengths, [], [], baseline, [])
    words = {int(t): backend.decode_token(int(t)) for t in np.unique(top)}
    acc, mean_prob = correct.mean(1), prob.mean(1)
    conditions = [
        [
            EvalResult(n, float(acc[c]), float(mean_prob[c]), [words[int(t)] for t in top[c]], correct[c], prob[c])
            for c in range(i * len(layers), (i + 1) * len(layers))
        ]
        for i in range(len(strengths))
    ]
    shape = (len(strengths), len(layers))
    return SweepResult(
        layers, strengths, acc.reshape(shape).tolist(), mean_prob.reshape(shape).tolist(), baseline, conditions
    )


def attribution_batch(backend: Backend, tasks: list[Task], mean: np.ndarray) -> Shard:
    """One batch of the preview: sum over its prompts of dP(answer)/dz(l, h) . (a(l, h) - z(l, h))
    (n_layers, n_heads; float64) and the sum of P(answer)."""
    g = backend.geometry
    means = torch.from_numpy(mean).to(backend.device).float()
    batch = backend.encode(tasks)
    leaves: dict[int, torch.Tensor] = {}
    z: dict[int, torch.Tensor] = {}
    handles = []
    for layer in range(g.n_layers):

        def pre_hook(_mod, args, layer=layer, z=z, leaves=leaves):
            x = args[0]
            z[layer] = x[:, -1].detach().float().view(x.shape[0], g.n_heads, g.d_head)
            # a zero that requires grad, added at the last position: its gradient is dP/dz
            leaves[layer] = torch.zeros(x.shape[0], x.shape[-1], device=x.device, dtype=x.dtype, requires_grad=True)
            x = torch.cat([x[:, :-1], (x[:, -1] + leaves[layer])[:, None]], 1)
            return (x, *args[1:])

        handles.append(backend.head_site(layer).register_forward_pre_hook(pre_hook))
    try:
        with torch.enable_grad():
            p = _probs(backend.run(batch)[:, None], batch.answer_ids)[:, 0]
            grads = torch.autograd.grad(p.sum(), [leaves[layer] for layer in range(g.n_layers)])
    finally:
        for h in handles:
            h.remove()
    est = np.zeros((g.n_layers, g.n_heads))
    for layer, grad in enumerate(grads):
        grad = grad.float().view(len(tasks), g.n_heads, g.d_head)
        est[layer] = (grad * (means[layer][None] - z[layer])).sum(-1).sum(0).double().cpu().numpy()
    return {"est": est, "base_sum": float(p.detach().sum())}


def attribution_preview(
    backend: Backend, corrupted: Sequence[Task], mean: torch.Tensor, batch_size: int = 16
) -> Generator[Progress, None, AIEResult]:
    """A linear estimate of every head's AIE: mean over prompts of
    dP(answer)/dz(l, h) . (a(l, h) - z(l, h)) at the last position, from one forward and one
    backward pass per batch (attribution patching). An AIEResult, as a preview of the exact one."""
    g = backend.geometry
    est = np.zeros((g.n_layers, g.n_heads))
    done, base_sum = 0, 0.0
    for chunk, b in map_batches(backend, corrupted, batch_size, attribution_batch, mean=numpy_of(mean)):
        est += b["est"]
        done += len(chunk)
        base_sum += b["base_sum"]
        yield Progress(done, len(corrupted), "attribution preview", {"aie": est / done, "n_prompts": done})
    if done == 0:
        raise ValueError("no corrupted prompts to estimate indirect effects on")
    return AIEResult(est / done, done, base_sum / done, est)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two matrices' entries (average ranks for ties)."""

    def ranks(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).ravel()
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x))
        for v in np.unique(x):  # ties share their mean rank
            tie = x == v
            if tie.sum() > 1:
                r[tie] = r[tie].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0
