"""Top-1 first-token accuracy, with or without interventions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch

from mfv_desktop.backends import Backend, Batch
from mfv_desktop.progress import Progress
from mfv_desktop.tasks import Task

from .shards import Shard, map_batches

#: something that, given the model and a batch, returns a context in which the model runs with an
#: intervention (vectors.Injection adds a function vector)
Intervention = Callable[[Backend, Batch], AbstractContextManager[None]]


def no_intervention(_backend: Backend, _batch: Batch) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


@dataclass
class Scores:
    answer_ids: torch.Tensor  # (B,) first token of the true answer
    answer_prob: torch.Tensor  # (B,) its probability
    predicted: torch.Tensor  # (B,) top-1 token id

    @property
    def correct(self) -> torch.Tensor:
        return self.predicted == self.answer_ids


@torch.no_grad()
def score(backend: Backend, batch: Batch, intervention: Intervention = no_intervention) -> Scores:
    with intervention(backend, batch):
        logits = backend.run(batch)
    probs = logits.softmax(-1)
    return Scores(batch.answer_ids, probs.gather(1, batch.answer_ids[:, None])[:, 0], logits.argmax(-1))


def top_predictions(backend: Backend, logits: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
    """Per row, the k most likely first tokens as (text, probability), best first."""
    p, ids = logits.float().softmax(-1).topk(min(k, logits.shape[-1]), dim=-1)
    return [
        [(backend.decode_token(int(i)), float(q)) for i, q in zip(row_ids, row_p)] for row_ids, row_p in zip(ids, p)
    ]


@dataclass
class EvalResult:
    n: int
    accuracy: float
    mean_answer_prob: float
    predictions: list[str]
    correct: np.ndarray  # (n,) bool
    answer_probs: np.ndarray  # (n,) P(true answer's first token)

    def to_json(self) -> dict:
        return {"n": self.n, "accuracy": self.accuracy, "mean_answer_prob": self.mean_answer_prob}


@torch.no_grad()
def eval_batch(backend: Backend, tasks: list[Task], intervention: Intervention = no_intervention) -> Shard:
    """One batch: each prompt's top-1 token, whether it is the answer, and P(answer)."""
    s = score(backend, backend.encode(tasks), intervention)
    return {
        "correct": s.correct.cpu().numpy(),
        "answer_prob": s.answer_prob.float().cpu().numpy(),
        "predicted": s.predicted.cpu().numpy().astype(np.int64),
    }


def evaluate(
    backend: Backend,
    tasks: Sequence[Task],
    batch_size: int = 16,
    intervention: Intervention = no_intervention,
    label: str = "evaluate",
) -> Generator[Progress, None, EvalResult]:
    """Top-1 accuracy on `tasks` under an intervention (one that travels to the executor's workers:
    `no_intervention`, or a module-level callable such as vectors.Injection)."""
    correct: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    preds: list[str] = []
    done = 0
    for chunk, b in map_batches(backend, tasks, batch_size, eval_batch, intervention=intervention):
        correct.append(b["correct"])
        probs.append(b["answer_prob"])
        preds.extend(backend.decode_token(int(t)) for t in b["predicted"])
        done += len(chunk)
        yield Progress(done, len(tasks), label)
    c = np.concatenate(correct) if correct else np.zeros(0, bool)
    p = np.concatenate(probs) if probs else np.zeros(0)
    return EvalResult(len(c), float(c.mean()) if len(c) else 0.0, float(p.mean()) if len(p) else 0.0, preds, c, p)
