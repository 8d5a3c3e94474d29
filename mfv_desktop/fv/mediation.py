"""Causal mediation (method.md §3): mean head activations and the average indirect effect (AIE).

This is the plain, exact reference: for every batch of corrupted prompts, one forward pass per head,
with that head's last-token output set to its mean activation over clean prompts. Fast paths must
agree with it. Which corrupted prompts it is given is `matched_prompts`' choice (the authors': those
whose clean prompt the model answers correctly), made before either runs, so both average over the same.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mfv_desktop.backends import Backend, Batch, batches
from mfv_desktop.progress import Progress
from mfv_desktop.tasks import Task, check_paired

from .evaluate import score
from .hooks import patch_heads, record_heads


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


def mean_head_activations(
    backend: Backend, clean: Sequence[Task], batch_size: int = 16, only_correct: bool = True
) -> Generator[Progress, None, MeanActivations]:
    """a(l, h) = mean of z(l, h) at the last token over clean prompts the model answers correctly."""
    g = backend.geometry
    sum_correct = torch.zeros(g.n_layers, g.n_heads, g.d_head)
    sum_all = torch.zeros_like(sum_correct)
    n_correct = n = 0
    correct: list[np.ndarray] = []
    for chunk in batches(clean, batch_size):
        batch = backend.encode(chunk)
        with record_heads(backend) as z:
            s = score(backend, batch)
        acts = torch.stack([z[layer] for layer in range(g.n_layers)], 1).cpu()  # (B, L, H, Dh)
        ok = s.correct.cpu()
        sum_all += acts.sum(0)
        sum_correct += acts[ok].sum(0)
        n_correct += int(ok.sum())
        correct.append(ok.numpy())
        n += len(chunk)
        yield Progress(n, len(clean), "mean activations")
    if n == 0:
        raise ValueError("no clean prompts to average over")
    notes = []
    use_correct = only_correct and n_correct > 0
    if only_correct and n_correct == 0:
        notes.append(f"no clean prompt was answered correctly (0 of {n}): the mean is over all {n} prompts")
    mean = sum_correct / n_correct if use_correct else sum_all / n
    return MeanActivations(
        mean, n_correct if use_correct else n, n, n_correct / n, use_correct, notes, np.concatenate(correct)
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
    if not matched_only:
        return Matched(list(corrupted), False, n_matched, n)
    if n_matched == 0:
        return Matched(
            list(corrupted),
            True,
            0,
            n,
            [f"no clean prompt was answered correctly (0 of {n}): the AIE is over all {n} corrupted prompts"],
        )
    return Matched([t for t, ok in zip(corrupted, correct) if ok], True, n_matched, n)


@dataclass
class AIEResult:
    aie: np.ndarray  # (n_layers, n_heads) mean indirect effect
    n_prompts: int
    base_prob: float  # mean P(answer | corrupted prompt)
    #: running sums, so that an interrupted computation can resume
    ie_sum: np.ndarray = field(repr=False)  # every result carries them (a result, a checkpoint)

    def to_json(self) -> dict[str, Any]:
        return {
            "n_prompts": self.n_prompts,
            "base_prob": self.base_prob,
            "max": float(self.aie.max()),
            "argmax": list(np.unravel_index(self.aie.argmax(), self.aie.shape)),
        }


@torch.no_grad()
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
    g = backend.geometry
    mean = mean.to(backend.device)

    def effects(batch) -> tuple[np.ndarray, torch.Tensor]:
        base = score(backend, batch).answer_prob
        ie = np.zeros((g.n_layers, g.n_heads))
        for layer in range(g.n_layers):
            for head in range(g.n_heads):
                with patch_heads(backend, {layer: [(head, mean[layer, head])]}):
                    patched = score(backend, batch).answer_prob
                ie[layer, head] = float((patched - base).sum())
        return ie, base

    return (yield from accumulate_effects(backend, corrupted, batch_size, start, effects))


def accumulate_effects(
    backend: Backend,
    corrupted: Sequence[Task],
    batch_size: int,
    start: AIEResult | None,
    effects: Callable[[Batch], tuple[np.ndarray, torch.Tensor]],
) -> Generator[Progress, None, AIEResult]:
    """The running sums of an AIE computation: `effects(batch)` gives a batch's summed indirect
    effects (n_layers, n_heads) and its base probabilities; `start` continues a partial result."""
    g = backend.geometry
    ie_sum = np.zeros((g.n_layers, g.n_heads)) if start is None else start.ie_sum.copy()
    done = 0 if start is None else start.n_prompts
    base_sum = 0.0 if start is None else start.base_prob * start.n_prompts
    for chunk in batches(corrupted[done:], batch_size):
        ie, base = effects(backend.encode(chunk))
        ie_sum += ie
        done += len(chunk)
        base_sum += float(base.sum())
        yield Progress(
            done,
            len(corrupted),
            "indirect effects",
            {"aie": ie_sum / done, "n_prompts": done, "ie_sum": ie_sum.copy(), "base_sum": base_sum},
        )
    if done == 0:
        raise ValueError("no corrupted prompts to measure indirect effects on")
    return AIEResult(ie_sum / done, done, base_sum / done, ie_sum)
