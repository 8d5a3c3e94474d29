"""Composite vectors and analogies (method.md §6).

A one-shot analogy: a source example (image, "Q:A. A:B") shows a relation the model was never
trained on; the target is (image, C). For each base relation r, p_r = P(B | source image, "Q:A. A:",
v_r injected at its layer); w = p / sum(p); the composite v = sum_r w_r v_r is injected into the
target's zero-shot prompt and its top-1 first token is the answer D.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generator, Literal, Sequence

import numpy as np
import torch

from mfv_desktop.backends import Backend
from mfv_desktop.progress import Progress
from mfv_desktop.tasks import Task

from .evaluate import score
from .hooks import add_vector

Weighting = Literal["probability", "softmax", "equal"]


@dataclass
class AnalogyItem:
    source: Task  # zero-shot: the source image and anchor A, answer B
    target: Task  # zero-shot: the target image and anchor C, answer D (the truth)


@dataclass
class AnalogyResult:
    weights: np.ndarray  # (n_base,) weights of the base vectors
    probs: np.ndarray  # (n_base,) P(B | source, v_r)
    prediction: int  # token id of D
    answer_prob: float  # P(true D | target, composite)
    correct: bool


def composite_weights(probs: np.ndarray, weighting: Weighting = "probability",
                      temperature: float = 1.0) -> np.ndarray:
    if weighting == "probability":
        total = probs.sum()
        return probs / total if total > 0 else np.full_like(probs, 1 / len(probs))
    if weighting == "softmax":
        z = np.log(np.clip(probs, 1e-12, None)) / temperature
        e = np.exp(z - z.max())
        return e / e.sum()
    if weighting == "equal":
        return np.full_like(probs, 1 / len(probs))
    raise ValueError(f"unknown weighting {weighting!r}: use probability, softmax or equal")


def composite_vector(vectors: Sequence[torch.Tensor], weights: np.ndarray) -> torch.Tensor:
    return sum(float(w) * v.float() for w, v in zip(weights, vectors))  # type: ignore[return-value]


@torch.no_grad()
def solve(backend: Backend, item: AnalogyItem, vectors: Sequence[torch.Tensor], layers: Sequence[int],
          strength: float = 1.0, weighting: Weighting = "probability", temperature: float = 1.0,
          inject_layer: int | None = None) -> AnalogyResult:
    """Weights from the source pair, then the composite injected into the target prompt."""
    src = backend.encode([item.source])
    probs = []
    for v, layer in zip(vectors, layers):
        with add_vector(backend, layer, v, strength):
            probs.append(float(score(backend, src).answer_prob[0]))
    p = np.array(probs)
    w = composite_weights(p, weighting, temperature)
    comp = composite_vector(vectors, w)
    layer = inject_layer if inject_layer is not None else int(round(float(np.dot(w, layers))))
    tgt = backend.encode([item.target])
    with add_vector(backend, layer, comp, strength):
        s = score(backend, tgt)
    return AnalogyResult(w, p, int(s.predicted[0]), float(s.answer_prob[0]), bool(s.correct[0]))


def solve_all(backend: Backend, items: Sequence[AnalogyItem], vectors: Sequence[torch.Tensor],
              layers: Sequence[int], **kw) -> Generator[Progress, None, list[AnalogyResult]]:
    out = []
    for i, item in enumerate(items, 1):
        out.append(solve(backend, item, vectors, layers, **kw))
        if i % 8 == 0 or i == len(items):
            yield Progress(i, len(items), "analogies", {"accuracy": float(np.mean([r.correct for r in out]))})
    return out
