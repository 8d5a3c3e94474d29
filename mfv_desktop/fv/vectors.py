"""Function vectors (method.md §4): build from heads, inject at a layer, sweep layers."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from mfv_desktop.backends import Backend, Batch
from mfv_desktop.progress import Progress, within
from mfv_desktop.tasks import Task

from .evaluate import EvalResult, evaluate
from .hooks import add_vector

#: "per_head": the output projection's bias is added once per head (the reference code);
#: "none": the heads' outputs only
BiasMode = Literal["per_head", "none"]
Head = tuple[int, int]


def top_heads(aie: np.ndarray, k: int = 10) -> list[Head]:
    """The k heads with the largest AIE, best first."""
    order = np.argsort(-aie, axis=None, kind="stable")[:k]
    return [tuple(int(i) for i in np.unravel_index(j, aie.shape)) for j in order]  # type: ignore[misc]


@torch.no_grad()
def function_vector(
    backend: Backend, mean: torch.Tensor, heads: Sequence[Head], bias: BiasMode = "per_head"
) -> torch.Tensor:
    """v = sum over heads of dense_l(pad_h(a(l, h))), float32 on the CPU, shape (d_model,)."""
    if not heads:
        raise ValueError("a function vector needs at least one head")
    g = backend.geometry
    v = torch.zeros(g.d_model)
    for layer, head in heads:
        if not (0 <= layer < g.n_layers and 0 <= head < g.n_heads):
            raise ValueError(f"head ({layer}, {head}) is outside the model's {g.n_layers} x {g.n_heads} heads")
        dense = backend.head_site(layer)
        w = dense.weight.detach().float().cpu()  # (d_model, n_heads * d_head)
        sl = slice(head * g.d_head, (head + 1) * g.d_head)
        v += w[:, sl] @ mean[layer, head].float().cpu()
        if bias == "per_head" and dense.bias is not None:
            v += dense.bias.detach().float().cpu()
    return v


def default_layer(n_layers: int) -> int:
    """The reference code's injection layer (index 18 of 32), scaled to the model's depth."""
    return min(n_layers - 1, round(18 / 32 * n_layers))


@dataclass(frozen=True)
class Injection:
    """An intervention (for fv.evaluate) that adds `vector` at `layer`, times `strength`; nothing
    when vector is None. Plain data: it travels to an executor's workers with the batches."""

    vector: torch.Tensor | None
    layer: int
    strength: float = 1.0

    def __call__(self, backend: Backend, _batch: Batch) -> AbstractContextManager[None]:
        if self.vector is None:
            return contextlib.nullcontext()
        return add_vector(backend, self.layer, self.vector, self.strength)


def injection(vector: torch.Tensor | None, layer: int, strength: float = 1.0) -> Injection:
    """The intervention that adds a vector at a layer (the vector detached, on the CPU: it travels)."""
    return Injection(None if vector is None else vector.detach().cpu(), layer, strength)


@dataclass
class SweepResult:
    layers: list[int]
    strengths: list[float]
    accuracy: list[list[float]]  # [strength][layer]
    mean_answer_prob: list[list[float]]
    baseline: EvalResult  # the same prompts without the vector
    #: each condition's answers prompt by prompt, [strength][layer] (accuracy[i][j] is theirs)
    conditions: list[list[EvalResult]] = field(default_factory=list, repr=False)

    @property
    def best(self) -> tuple[int, float]:
        """(layer, strength) by stats.BEST_RULE: the highest accuracy; on a tie the smaller strength,
        then the earlier layer."""
        from mfv_desktop.stats import best_point

        return best_point(self.layers, self.strengths, self.accuracy)

    @property
    def best_layer(self) -> int:
        return self.best[0]

    def rows(self) -> list[tuple[float, int, float, float]]:
        return [
            (s, layer, self.accuracy[i][j], self.mean_answer_prob[i][j])
            for i, s in enumerate(self.strengths)
            for j, layer in enumerate(self.layers)
        ]

    def to_json(self) -> dict:
        layer, strength = self.best
        return {
            "layers": self.layers,
            "strengths": self.strengths,
            "accuracy": self.accuracy,
            "mean_answer_prob": self.mean_answer_prob,
            "baseline": self.baseline.to_json(),
            "best_layer": layer,
            "best_strength": strength,
            "best_accuracy": max(max(a) for a in self.accuracy) if self.layers else 0.0,
        }


def layer_sweep(
    backend: Backend,
    tasks: Sequence[Task],
    vector: torch.Tensor,
    layers: Sequence[int] | None = None,
    strengths: Sequence[float] = (1.0,),
    batch_size: int = 16,
) -> Generator[Progress, None, SweepResult]:
    """Accuracy on `tasks` (usually zero-shot) with the vector injected at each layer in turn, at each
    strength (an extracted vector can be small next to the residual stream: sweep strength too)."""
    layers = list(range(backend.geometry.n_layers)) if layers is None else list(layers)
    strengths = list(strengths)
    n = len(tasks)
    total = n * (len(layers) * len(strengths) + 1)
    baseline = yield from within(evaluate(backend, tasks, batch_size), 0, total, "baseline")
    acc: list[list[float]] = []
    prob: list[list[float]] = []
    conditions: list[list[EvalResult]] = []
    done = n
    for strength in strengths:
        acc.append([])
        prob.append([])
        conditions.append([])
        for layer in layers:
            r = yield from within(
                evaluate(backend, tasks, batch_size, injection(vector, layer, strength)),
                done,
                total,
                f"layer {layer} x{strength:g}",
            )
            done += n
            acc[-1].append(r.accuracy)
            prob[-1].append(r.mean_answer_prob)
            conditions[-1].append(r)
            yield Progress(
                done,
                total,
                f"layer {layer} x{strength:g}",
                {"layers": layers, "strengths": strengths, "accuracy": [list(a) for a in acc], "n": n},
            )
    return SweepResult(layers, strengths, acc, prob, baseline, conditions)
