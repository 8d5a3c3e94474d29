"""Composite vectors and analogies (method.md §6).

A one-shot analogy: a source example (image, "Q:A. A:B") shows a relation the model was never
trained on; the target is (image, C). For each base relation r, p_r = P(B | source image, "Q:A. A:",
v_r injected at its layer and strength); w = p / sum(p); the composite v = sum_r w_r s_r v_r is
added (at strength 1) to the target's zero-shot prompt and its top-1 first token is the answer D.

Where the base vectors sit at different layers the composite goes in at the weighted mean layer
(rounded), unless a layer is given.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from mfv_desktop.backends import Backend, batches
from mfv_desktop.progress import Progress, run_to_end
from mfv_desktop.tasks import Task

from .evaluate import top_predictions
from .hooks import add_vector

Weighting = Literal["probability", "softmax", "equal"]
WEIGHTINGS: tuple[str, ...] = ("probability", "softmax", "equal")


@dataclass(frozen=True)
class BaseVector:
    """A part of a composite: the vector, where it goes in and how strongly."""

    vector: torch.Tensor  # (d_model,)
    layer: int
    strength: float = 1.0
    relation: str = ""


@dataclass
class AnalogyItem:
    source: Task  # zero-shot: the source image and anchor A, answer B
    target: Task  # zero-shot: the target image and anchor C, answer D (the truth, if `known`)
    known: bool = True  # False when D is not known (a user's own question): nothing is scored

    def one_shot(self) -> Task:
        """The same question as 1-shot ICL: the source pair as the demonstration."""
        return Task(self.target.relation, "clean", (self.source.query,), self.target.query)


@dataclass
class AnalogyResult:
    weights: np.ndarray  # (n_base,) weights of the base vectors
    probs: np.ndarray  # (n_base,) P(B | source, v_r)
    layer: int  # where the composite went in
    prediction: int  # token id of D
    prediction_text: str
    prediction_prob: float  # P(D | target, composite)
    answer_prob: float | None  # P(true D | target, composite), when D is known
    correct: bool | None
    top: list[tuple[str, float]] = field(default_factory=list)  # the 5 likeliest first tokens


def composite_weights(probs: np.ndarray, weighting: Weighting = "probability", temperature: float = 1.0) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
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


def composite_vector(parts: Sequence[BaseVector], weights: np.ndarray) -> torch.Tensor:
    """sum_r w_r s_r v_r, float32 (strengths folded in: the composite goes in at strength 1)."""
    return sum(float(w) * p.strength * p.vector.float().cpu() for w, p in zip(weights, parts))  # type: ignore[return-value]


def composite_layer(parts: Sequence[BaseVector], weights: np.ndarray) -> int:
    layers = {p.layer for p in parts}
    if len(layers) == 1:
        return layers.pop()
    return int(round(float(np.dot(weights, [p.layer for p in parts]))))


@torch.no_grad()
def source_probs(
    backend: Backend, sources: Sequence[Task], parts: Sequence[BaseVector], batch_size: int = 16
) -> np.ndarray:
    """(n_sources, n_base): P(B | source, v_r injected) for each source and base vector."""
    out = np.zeros((len(sources), len(parts)))
    row = 0
    for chunk in batches(sources, batch_size):
        batch = backend.encode(chunk)
        for j, p in enumerate(parts):
            with add_vector(backend, p.layer, p.vector, p.strength):
                probs = backend.run(batch).softmax(-1)
            out[row : row + len(chunk), j] = probs.gather(1, batch.answer_ids[:, None])[:, 0].cpu().numpy()
        row += len(chunk)
    return out


def solve_all(
    backend: Backend,
    items: Sequence[AnalogyItem],
    parts: Sequence[BaseVector],
    weighting: Weighting = "probability",
    temperature: float = 1.0,
    layer: int | None = None,
    batch_size: int = 16,
) -> Generator[Progress, None, list[AnalogyResult]]:
    """Solve analogies in batches: the source pairs' probabilities, then each target with its own
    composite (rows that share an injection layer run together)."""
    if not parts:
        raise ValueError("a composite needs at least one base vector")
    n = len(items)
    probs = source_probs(backend, [i.source for i in items], parts, batch_size)
    yield Progress(n, 2 * n, "source probabilities")
    weights = [composite_weights(p, weighting, temperature) for p in probs]
    layers = [composite_layer(parts, w) if layer is None else layer for w in weights]
    results: list[AnalogyResult | None] = [None] * n
    done = n
    for at in sorted(set(layers)):
        rows = [i for i in range(n) if layers[i] == at]
        for s in range(0, len(rows), batch_size):
            idx = rows[s : s + batch_size]
            comp = torch.stack([composite_vector(parts, weights[i]) for i in idx])  # one per row
            with torch.no_grad():
                batch = backend.encode([items[i].target for i in idx])
                with add_vector(backend, at, comp):
                    logits = backend.run(batch)
            p = logits.softmax(-1)
            top = top_predictions(backend, logits)
            for r, i in enumerate(idx):
                pred = int(p[r].argmax())
                known = items[i].known
                truth = int(batch.answer_ids[r])
                results[i] = AnalogyResult(
                    weights[i],
                    probs[i],
                    at,
                    pred,
                    backend.decode_token(pred),
                    float(p[r, pred]),
                    float(p[r, truth]) if known else None,
                    (pred == truth) if known else None,
                    top[r],
                )
            done += len(idx)
            yield Progress(done, 2 * n, "composite vectors")
    return results  # type: ignore[return-value]


def solve(backend: Backend, item: AnalogyItem, parts: Sequence[BaseVector], **kw) -> AnalogyResult:
    """One analogy (see solve_all)."""
    return run_to_end(solve_all(backend, [item], parts, **kw))[0]


def analogy_items(zeroshot: Sequence[Task], seed: int = 0) -> list[AnalogyItem]:
    """One item per zero-shot task: the task is the target, and the source is another scene's
    task of the same relation, drawn at random (seeded)."""
    rng = random.Random(seed)
    by_rel: dict[str, list[Task]] = {}
    for t in zeroshot:
        by_rel.setdefault(t.relation, []).append(t)
    items = []
    for t in zeroshot:
        others = [s for s in by_rel[t.relation] if s.query.scene_id != t.query.scene_id]
        if others:
            items.append(AnalogyItem(rng.choice(others), t))
    return items


def k_shot(items: Sequence[AnalogyItem], pool: Sequence[Task], k: int, seed: int = 0) -> list[Task]:
    """The items' targets as K-shot ICL tasks, with demonstrations of the same relation from other scenes."""
    rng = random.Random(seed)
    out = []
    for i in items:
        others = [
            s.query for s in pool if s.relation == i.target.relation and s.query.scene_id != i.target.query.scene_id
        ]
        out.append(Task(i.target.relation, "clean", tuple(rng.sample(others, min(k, len(others)))), i.target.query))
    return out
