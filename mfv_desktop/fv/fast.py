"""Fast, exact causal mediation and layer sweeps, and a linear preview (method.md §3-4).

Patching head (l, h) at the last token, or adding a vector to the residual stream after layer L at
the last token, changes nothing at earlier positions. So each prompt runs once up to its last
position (the backend's `prefill`: the key/value cache of every layer, the vision features), and
every intervention is one *row* that recomputes the last position alone from that cache
(`run_last`). Rows of all heads (or layers and strengths) and of several prompts run as one
batch, as large as memory allows. The result equals the reference loop in mediation.py (one full
forward per head per prompt) up to float rounding.

The attribution-patching preview estimates every head's indirect effect from one forward and one
backward pass per batch: the gradient of the answer probability with respect to each head's
last-token output, times the difference between the mean activation and the corrupted one.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Generator, Iterator, Sequence

import numpy as np
import torch

from mfv_desktop.backends import Backend, batches
from mfv_desktop.progress import Progress
from mfv_desktop.tasks import Task

from .evaluate import EvalResult
from .mediation import AIEResult
from .vectors import SweepResult

#: the most rows one recomputation of the last position takes at once
MAX_ROWS = 4096


def supports_fast(backend: Backend) -> bool:
    return hasattr(backend, "prefill") and hasattr(backend, "run_last")


def memory_budget(device: torch.device) -> int:
    """Bytes the fast path may use for one batch of rows: half the free GPU memory, or a quarter of
    the available RAM (at most 4 GiB) on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        avail = 8 << 30
    return int(min(avail // 4, 4 << 30))


def rows_per_run(backend: Backend, prefix: Any, max_rows: int | None = None) -> int:
    if max_rows:
        return max_rows
    return int(max(1, min(MAX_ROWS, memory_budget(backend.device) // max(1, backend.row_bytes(prefix)))))


@contextlib.contextmanager
def _patch_rows(backend: Backend, layers: torch.Tensor, heads: torch.Tensor, mean: torch.Tensor) -> Iterator[None]:
    """Row r gets z(layers[r], heads[r]) := mean[layers[r], heads[r]] at the last position
    (layers[r] = -1: row r is not patched)."""
    g = backend.geometry
    handles = []
    for layer in torch.unique(layers[layers >= 0]).tolist():
        sel = torch.nonzero(layers == layer).flatten().to(backend.device)
        hs = heads[layers == layer].to(backend.device)
        values = mean[layer, hs]

        def pre_hook(_mod, args, sel=sel, hs=hs, values=values):
            x = args[0].clone()
            view = x.view(x.shape[0], x.shape[1], g.n_heads, g.d_head)
            view[sel, -1, hs] = values.to(x.dtype)
            return (x, *args[1:])
        handles.append(backend.head_site(layer).register_forward_pre_hook(pre_hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _answer_probs(logits: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    return logits.softmax(-1).gather(1, answers[:, None])[:, 0]


@torch.no_grad()
def fast_average_indirect_effect(backend: Backend, corrupted: Sequence[Task], mean: torch.Tensor,
                                 batch_size: int = 16, start: AIEResult | None = None,
                                 max_rows: int | None = None) -> Generator[Progress, None, AIEResult]:
    """The same AIE as mediation.average_indirect_effect (same arguments, same progress), fast."""
    g = backend.geometry
    n_heads_total = g.n_layers * g.n_heads
    mean = mean.to(backend.device)
    ie_sum = np.zeros((g.n_layers, g.n_heads)) if start is None else start.ie_sum.copy()
    done = 0 if start is None else start.n_prompts
    base_sum = 0.0 if start is None else start.base_prob * start.n_prompts
    for chunk in batches(corrupted[done:], batch_size):
        batch = backend.encode(chunk)
        prefix = backend.prefill(batch)
        base = _answer_probs(backend.run_last(prefix, torch.arange(len(chunk))), batch.answer_ids)
        # row i: prompt i // n_heads_total, head i % n_heads_total (layer-major)
        n_rows = len(chunk) * n_heads_total
        step = rows_per_run(backend, prefix, max_rows)
        ie = torch.zeros(n_heads_total, dtype=torch.float64, device=backend.device)
        for s in range(0, n_rows, step):
            idx = torch.arange(s, min(s + step, n_rows))
            prompt, flat = idx // n_heads_total, idx % n_heads_total
            with _patch_rows(backend, flat // g.n_heads, flat % g.n_heads, mean):
                logits = backend.run_last(prefix, prompt)
            prompt = prompt.to(backend.device)
            diff = _answer_probs(logits, batch.answer_ids[prompt]) - base[prompt]
            ie.index_add_(0, flat.to(backend.device), diff.double())
        ie_sum += ie.view(g.n_layers, g.n_heads).cpu().numpy()
        done += len(chunk)
        base_sum += float(base.sum())
        yield Progress(done, len(corrupted), "indirect effects",
                       {"aie": ie_sum / done, "n_prompts": done, "ie_sum": ie_sum.copy(), "base_sum": base_sum})
    if done == 0:
        raise ValueError("no corrupted prompts to measure indirect effects on")
    return AIEResult(ie_sum / done, done, base_sum / done, ie_sum)


@contextlib.contextmanager
def _add_rows(backend: Backend, layers: torch.Tensor, scale: torch.Tensor, vector: torch.Tensor) -> Iterator[None]:
    """Row r gets scale[r] * vector added to the residual stream after layers[r], last position."""
    v = vector.to(backend.device)
    handles = []
    for layer in torch.unique(layers[layers >= 0]).tolist():
        sel = torch.nonzero(layers == layer).flatten().to(backend.device)
        delta = scale[layers == layer].to(backend.device)[:, None] * v

        def hook(_mod, _args, output, sel=sel, delta=delta):
            h = output[0] if isinstance(output, tuple) else output
            h = h.clone()
            h[sel, -1] += delta.to(h.dtype)
            return (h, *output[1:]) if isinstance(output, tuple) else h
        handles.append(backend.residual_site(layer).register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def fast_layer_sweep(backend: Backend, tasks: Sequence[Task], vector: torch.Tensor,
                     layers: Sequence[int] | None = None, strengths: Sequence[float] = (1.0,),
                     batch_size: int = 16, max_rows: int | None = None) -> Generator[Progress, None, SweepResult]:
    """The same sweep as vectors.layer_sweep: accuracy with the vector at each layer and strength."""
    if vector.shape[-1] != backend.geometry.d_model:
        raise ValueError(f"vector has {vector.shape[-1]} dims, model {backend.model_id} has "
                         f"d_model={backend.geometry.d_model}: it was made for another model")
    layers = list(range(backend.geometry.n_layers)) if layers is None else list(layers)
    strengths = list(strengths)
    # condition c = 0 is the baseline; then (strength, layer) strength-major
    conds = [(-1, 0.0)] + [(layer, s) for s in strengths for layer in layers]
    c_layer = torch.tensor([c[0] for c in conds])
    c_scale = torch.tensor([c[1] for c in conds], dtype=torch.float32)
    correct = np.zeros((len(conds), len(tasks)), bool)
    prob = np.zeros((len(conds), len(tasks)))
    preds: list[str] = []
    done = 0
    for chunk in batches(tasks, batch_size):
        batch = backend.encode(chunk)
        prefix = backend.prefill(batch)
        n_rows = len(chunk) * len(conds)
        step = rows_per_run(backend, prefix, max_rows)
        for s in range(0, n_rows, step):
            idx = torch.arange(s, min(s + step, n_rows))
            prompt, cond = idx // len(conds), idx % len(conds)
            with _add_rows(backend, c_layer[cond], c_scale[cond], vector.float()):
                logits = backend.run_last(prefix, prompt)
            answers = batch.answer_ids[prompt.to(backend.device)]
            pred = logits.argmax(-1)
            p = _answer_probs(logits, answers)
            at = (cond.numpy(), done + prompt.numpy())
            correct[at] = (pred == answers).cpu().numpy()
            prob[at] = p.cpu().numpy()
            base_rows = (cond == 0).nonzero().flatten()
            preds.extend(backend.decode_token(int(pred[r])) for r in base_rows)
        done += len(chunk)
        acc = correct[1:, :done].mean(1).reshape(len(strengths), len(layers))
        yield Progress(done, len(tasks), "layer sweep",
                       {"layers": layers, "strengths": strengths, "accuracy": acc.tolist()})
    n = len(tasks)
    baseline = EvalResult(n, float(correct[0].mean()) if n else 0.0, float(prob[0].mean()) if n else 0.0,
                          preds, correct[0], prob[0])
    shape = (len(strengths), len(layers))
    return SweepResult(layers, strengths, correct[1:].mean(1).reshape(shape).tolist() if n else [],
                       prob[1:].mean(1).reshape(shape).tolist() if n else [], baseline)


def attribution_preview(backend: Backend, corrupted: Sequence[Task], mean: torch.Tensor,
                        batch_size: int = 16) -> Generator[Progress, None, AIEResult]:
    """A linear estimate of every head's AIE: mean over prompts of
    dP(answer)/dz(l, h) . (a(l, h) - z(l, h)) at the last position, from one forward and one
    backward pass per batch (attribution patching). An AIEResult, as a preview of the exact one."""
    g = backend.geometry
    mean = mean.to(backend.device).float()
    est = np.zeros((g.n_layers, g.n_heads))
    done, base_sum = 0, 0.0
    for chunk in batches(corrupted, batch_size):
        batch = backend.encode(chunk)
        leaves: dict[int, torch.Tensor] = {}
        z: dict[int, torch.Tensor] = {}
        handles = []
        for layer in range(g.n_layers):
            def pre_hook(_mod, args, layer=layer):
                x = args[0]
                z[layer] = x[:, -1].detach().float().view(x.shape[0], g.n_heads, g.d_head)
                # a zero that requires grad, added at the last position: its gradient is dP/dz
                leaves[layer] = torch.zeros(x.shape[0], x.shape[-1], device=x.device, dtype=x.dtype,
                                            requires_grad=True)
                x = torch.cat([x[:, :-1], (x[:, -1] + leaves[layer])[:, None]], 1)
                return (x, *args[1:])
            handles.append(backend.head_site(layer).register_forward_pre_hook(pre_hook))
        try:
            with torch.enable_grad():
                p = _answer_probs(backend.run(batch), batch.answer_ids)
                grads = torch.autograd.grad(p.sum(), [leaves[layer] for layer in range(g.n_layers)])
        finally:
            for h in handles:
                h.remove()
        for layer, grad in enumerate(grads):
            grad = grad.float().view(len(chunk), g.n_heads, g.d_head)
            est[layer] += (grad * (mean[layer][None] - z[layer])).sum(-1).sum(0).double().cpu().numpy()
        done += len(chunk)
        base_sum += float(p.detach().sum())
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
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0
