"""Causal mediation (method.md §3): mean head activations and the average indirect effect (AIE).

This is the plain, exact reference: for every batch of corrupted prompts, one forward pass per head,
with that head's last-token output set to its mean activation over clean prompts. Fast paths must
agree with it. Which corrupted prompts it is given is `matched_prompts`' choice (the authors': those
whose clean prompt the model answers correctly), made before either runs, so both average over the same.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mfv_desktop.backends import Backend
from mfv_desktop.progress import Progress
from mfv_desktop.tasks import Task, check_paired

from .evaluate import score
from .hooks import patch_heads, record_heads
from .shards import BatchFn, Shard, map_batches, numpy_of


@dataclass
class MeanActivations:
    mean: torch.Tensor  # (n_layers, n_heads, d_head) float32
    n_used: int  # prompts averaged over
    n_total: int
    clean_accuracy: float
    #: True when the mean is over correct prompts only (the paper); False when no clean prompt was
    #: answered correctly and the mean fell back to all prompts
    only_correct: bool
    notes: list[str] = field(default_factory=list)
    #: (n_total,) whether the model answered each clean prompt correctly (top-1), in prompt order
    correct: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    #: (n_total,) the model's top-1 token id and P(answer) on each clean prompt, in prompt order
    predicted: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    answer_probs: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


@torch.no_grad()
def clean_batch(backend: Backend, tasks: list[Task]) -> Shard:
    """One batch of clean prompts: each head's last-token output summed over the batch and over its
    correctly answered prompts (n_layers, n_heads, d_head; float32), and each prompt's top-1 token,
    P(answer) and whether it was right."""
    g = backend.geometry
    batch = backend.encode(tasks)
    with record_heads(backend) as z:
        s = score(backend, batch)
    acts = torch.stack([z[layer] for layer in range(g.n_layers)], 1).cpu()  # (B, L, H, Dh)
    ok = s.correct.cpu()
    return {
        "sum_all": acts.sum(0).numpy(),
        "sum_correct": acts[ok].sum(0).numpy(),
        "correct": ok.numpy(),
        "predicted": s.predicted.cpu().numpy().astype(np.int64),
        "answer_prob": s.answer_prob.float().cpu().numpy(),
    }


def mean_head_activations(
    backend: Backend, clean: Sequence[Task], batch_size: int = 16, only_correct: bool = True
) -> Generator[Progress, None, MeanActivations]:
    """a(l, h) = mean of z(l, h) at the last token over clean prompts the model answers correctly."""
    g = backend.geometry
    sum_correct = np.zeros((g.n_layers, g.n_heads, g.d_head), np.float32)
    sum_all = np.zeros_like(sum_correct)
    n_correct = n = 0
    correct: list[np.ndarray] = []
    predicted: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    for chunk, r in map_batches(backend, clean, batch_size, clean_batch):
        sum_all += r["sum_all"]
        sum_correct += r["sum_correct"]
        n_correct += int(r["correct"].sum())
        correct.append(r["correct"])
        predicted.append(r["predicted"])
        probs.append(r["answer_prob"])
        n += len(chunk)
        yield Progress(n, len(clean), "mean activations")
    if n == 0:
        raise ValueError("no clean prompts to average over")
    notes = []
    use_correct = only_correct and n_correct > 0
    if only_correct and n_correct == 0:
        notes.append(f"no clean prompt was answered correctly (0 of {n}): the mean is over all {n} prompts")
    mean = torch.from_numpy(sum_correct / np.float32(n_correct) if use_correct else sum_all / np.float32(n))
    return MeanActivations(
        mean,
        n_correct if use_correct else n,
        n,
        n_correct / n,
        use_correct,
        notes,
        np.concatenate(correct),
        np.concatenate(predicted),
        np.concatenate(probs),
    )


@dataclass
class Matched:
    """The corrupted prompts an AIE is averaged over."""

    prompts: list[Task]
    #: the choice: only prompts whose clean twin the model answered correctly (the authors'), or all
    matched_only: bool
    n_matched: int  # corrupted prompts whose clean prompt was answered correctly
    n_corrupted: int
    notes: list[str] = field(default_factory=list)
    #: where each prompt is in the corrupted prompts given (their task set's indices)
    indices: list[int] = field(default_factory=list)


def matched_prompts(
    clean: Sequence[Task], corrupted: Sequence[Task], correct: np.ndarray, matched_only: bool = True
) -> Matched:
    """The corrupted prompts to average the indirect effect over: with `matched_only` (the authors'
    convention) those whose clean prompt (its pair, tasks.check_paired) the model answered correctly,
    falling back to all with a note when there is none; else all."""
    check_paired(clean, corrupted)
    if len(correct) != len(clean):
        raise ValueError(f"{len(correct)} clean answers scored for {len(clean)} clean prompts")
    n_matched, n = int(np.sum(correct)), len(corrupted)
    every = list(range(n))
    if not matched_only:
        return Matched(list(corrupted), False, n_matched, n, [], every)
    if n_matched == 0:
        return Matched(
            list(corrupted),
            True,
            0,
            n,
            [f"no clean prompt was answered correctly (0 of {n}): the AIE is over all {n} corrupted prompts"],
            every,
        )
    kept = [i for i, ok in enumerate(correct) if ok]
    return Matched([corrupted[i] for i in kept], True, n_matched, n, [], kept)


@dataclass
class AIEResult:
    aie: np.ndarray  # (n_layers, n_heads) mean indirect effect
    n_prompts: int
    base_prob: float  # mean P(answer | corrupted prompt)
    #: running sums, so that an interrupted computation can resume
    ie_sum: np.ndarray = field(repr=False)  # every result carries them (a result, a checkpoint)
    #: each head's indirect effect on each prompt, in prompt order (n_prompts, n_layers, n_heads)
    #: float32; None where it was not kept (the attribution preview)
    prompt_effects: np.ndarray | None = field(default=None, repr=False)
    #: per prompt: P(answer | corrupted prompt) (float32), the model's top-1 token id on it, and
    #: whether that is the answer's first token
    base_probs: np.ndarray | None = field(default=None, repr=False)
    predicted: np.ndarray | None = field(default=None, repr=False)
    correct: np.ndarray | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "n_prompts": self.n_prompts,
            "base_prob": self.base_prob,
            "max": float(self.aie.max()),
            "argmax": list(np.unravel_index(self.aie.argmax(), self.aie.shape)),
        }


def effects_shard(
    ie: np.ndarray, base: torch.Tensor, per_prompt: torch.Tensor, predicted: torch.Tensor, answer_ids: torch.Tensor
) -> Shard:
    """What one batch of corrupted prompts gave, as `accumulate_effects` adds it up: the indirect
    effects summed over its prompts (n_layers, n_heads; float64, summed as the AIE always was), the
    sum of P(answer) on the unpatched prompts, and per prompt: P(answer), each head's indirect effect
    (B, n_layers, n_heads), the top-1 token id and whether it is the answer."""
    return {
        "ie": ie,
        "base_sum": float(base.sum()),
        "base": numpy_of(base),
        "per_prompt": numpy_of(per_prompt),
        "predicted": predicted.cpu().numpy().astype(np.int64),
        "correct": (predicted == answer_ids.to(predicted.device)).cpu().numpy(),
    }


@torch.no_grad()
def reference_effects(backend: Backend, tasks: list[Task], mean: np.ndarray) -> Shard:
    """One batch of corrupted prompts, one forward pass per head with that head set to its mean."""
    g = backend.geometry
    batch = backend.encode(tasks)
    means = torch.from_numpy(mean).to(backend.device)
    s = score(backend, batch)
    base = s.answer_prob
    ie = np.zeros((g.n_layers, g.n_heads))
    per = torch.zeros(len(base), g.n_layers, g.n_heads, device=base.device, dtype=base.dtype)
    for layer in range(g.n_layers):
        for head in range(g.n_heads):
            with patch_heads(backend, {layer: [(head, means[layer, head])]}):
                patched = score(backend, batch).answer_prob
            d = patched - base
            ie[layer, head] = float(d.sum())
            per[:, layer, head] = d
    return effects_shard(ie, base, per, s.predicted, batch.answer_ids)


def average_indirect_effect(
    backend: Backend,
    corrupted: Sequence[Task],
    mean: torch.Tensor,
    batch_size: int = 16,
    start: AIEResult | None = None,
) -> Generator[Progress, None, AIEResult]:
    """AIE(l, h) = mean over corrupted prompts p of P(y | p, z(l,h) := a(l,h)) - P(y | p).

    Yields after each batch of prompts with the AIE so far in `partial["aie"]`. `start` continues
    a partial result over the prompts after its first `start.n_prompts`.
    """
    return (
        yield from accumulate_effects(backend, corrupted, batch_size, start, reference_effects, mean=numpy_of(mean))
    )


def accumulate_effects(
    backend: Backend,
    corrupted: Sequence[Task],
    batch_size: int,
    start: AIEResult | None,
    effects: BatchFn,
    **args: Any,
) -> Generator[Progress, None, AIEResult]:
    """The running sums of an AIE computation: `effects(backend, tasks, **args)` gives a batch's
    `effects_shard`; `start` continues a partial result. Each yield's `partial` carries the sums and,
    as lists of per-batch arrays (joined by `join_prompts`), each prompt's effects, base probability
    and top-1 token."""
    g = backend.geometry
    ie_sum = np.zeros((g.n_layers, g.n_heads)) if start is None else start.ie_sum.copy()
    done = 0 if start is None else start.n_prompts
    base_sum = 0.0 if start is None else start.base_prob * start.n_prompts
    per: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    preds: list[np.ndarray] = []
    oks: list[np.ndarray] = []
    kept = start is None or start.prompt_effects is not None
    if start is not None and kept:
        per.append(np.asarray(start.prompt_effects, np.float32))
        probs.append(np.asarray(start.base_probs, np.float32))
        preds.append(np.asarray(start.predicted, np.int64))
        oks.append(np.asarray(start.correct, bool))
    for chunk, b in map_batches(backend, corrupted[done:], batch_size, effects, **args):
        ie_sum += b["ie"]
        done += len(chunk)
        base_sum += b["base_sum"]
        per.append(b["per_prompt"])
        probs.append(b["base"])
        preds.append(b["predicted"])
        oks.append(b["correct"])
        yield Progress(
            done,
            len(corrupted),
            "indirect effects",
            {
                "aie": ie_sum / done,
                "n_prompts": done,
                "ie_sum": ie_sum.copy(),
                "base_sum": base_sum,
                **({"prompts": (list(per), list(probs), list(preds), list(oks))} if kept else {}),
            },
        )
    if done == 0:
        raise ValueError("no corrupted prompts to measure indirect effects on")
    if not kept:  # resumed from sums kept without the prompts': the sums alone
        return AIEResult(ie_sum / done, done, base_sum / done, ie_sum)
    return AIEResult(ie_sum / done, done, base_sum / done, ie_sum, *join_prompts(per, probs, preds, oks))


def join_prompts(
    per: Sequence[np.ndarray], probs: Sequence[np.ndarray], preds: Sequence[np.ndarray], oks: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The per-batch arrays of `accumulate_effects` (a yield's `partial["prompts"]`) joined: each
    prompt's effects, base probability, top-1 token id and whether it was right."""
    return (
        np.concatenate(per).astype(np.float32, copy=False),
        np.concatenate(probs).astype(np.float32, copy=False),
        np.concatenate(preds).astype(np.int64, copy=False),
        np.concatenate(oks).astype(bool, copy=False),
    )
