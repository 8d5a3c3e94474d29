"""Fine-tuned function vectors (method.md §5): train only the vector, the model frozen.

The vector is added at layer L at the last prompt token of zero-shot prompts of one relation; the
loss is the cross-entropy of the first answer token. Adam with a cosine learning-rate schedule,
per step. After every epoch (and before the first: "epoch 0" is the starting vector) the vector is
scored on a validation set and the best one is kept, so fine-tuning never returns a vector worse on
validation than the one it started from.

The loop is a generator: it yields after every step with the loss so far and after every epoch
with the validation accuracy, so a viewer can draw live curves. Its state (vector, Adam moments,
best so far, history) is a plain `FinetuneState` that a job saves at each epoch's end and can
resume from.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from mfv_desktop.backends import Backend, batches
from mfv_desktop.progress import Progress, run_to_end
from mfv_desktop.tasks import Task

from .evaluate import evaluate
from .hooks import add_vector
from .shards import in_process
from .vectors import injection

Schedule = Literal["cosine", "constant"]


@dataclass(frozen=True)
class FinetuneConfig:
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 16
    schedule: Schedule = "cosine"
    seed: int = 0


#: the paper's settings (Adam, lr 1e-3, 20 epochs, cosine) and the authors' code defaults
PRESETS: dict[str, FinetuneConfig] = {
    "paper": FinetuneConfig(lr=1e-3, epochs=20, batch_size=16, schedule="cosine"),
    "authors": FinetuneConfig(lr=1e-2, epochs=10, batch_size=1, schedule="cosine"),
}


@dataclass
class FinetuneState:
    """Everything needed to go on after an epoch: the vector, Adam's moments, the best so far."""

    vector: torch.Tensor  # (d_model,) float32, the vector being trained
    best: torch.Tensor  # the best vector on validation so far
    exp_avg: torch.Tensor
    exp_avg_sq: torch.Tensor
    epoch: int = 0  # epochs finished
    step: int = 0  # optimizer steps taken
    best_epoch: int = 0
    best_accuracy: float = -1.0
    best_loss: float = math.inf
    #: per epoch: {"epoch", "train_loss", "val_accuracy", "val_loss"}; epoch 0 is the start (no train loss)
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, init: torch.Tensor) -> FinetuneState:
        v = init.detach().float().cpu().clone()
        return cls(v, v.clone(), torch.zeros_like(v), torch.zeros_like(v))

    def meta(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "step": self.step,
            "best_epoch": self.best_epoch,
            "best_accuracy": self.best_accuracy,
            "best_loss": self.best_loss,
            "history": self.history,
        }


@contextlib.contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """The model's parameters need no gradient for a while (only the vector is trained)."""
    was = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in was:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, r in was:
            p.requires_grad_(r)


def _validate(
    backend: Backend, tasks: Sequence[Task], vector: torch.Tensor, layer: int, batch_size: int
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on the validation tasks with the vector injected (in this
    process: fine-tuning is not sharded)."""
    with in_process():
        r = run_to_end(evaluate(backend, tasks, batch_size, injection(vector, layer)))
    probs = torch.tensor(r.answer_probs).clamp_min(1e-12)
    return r.accuracy, float(-probs.log().mean())


def finetune_vector(
    backend: Backend,
    train: Sequence[Task],
    val: Sequence[Task],
    layer: int,
    init: torch.Tensor | None = None,
    config: FinetuneConfig = FinetuneConfig(),
    state: FinetuneState | None = None,
) -> Generator[Progress, None, FinetuneState]:
    """Train a vector for `train`'s relation; returns the final state (its `best` is the result).

    Start from `init` (an extracted vector, times its strength) or go on from `state`. Progress
    partials: "loss" after every step; after each epoch "epoch", "val_accuracy", "history" and
    "best" (the best vector so far, so a job can save it before it can be cancelled)."""
    if not train or not val:
        raise ValueError(f"fine-tuning needs training and validation prompts (got {len(train)} and {len(val)})")
    if state is None:
        if init is None:
            raise ValueError("fine-tuning needs a starting vector or a state to resume")
        state = FinetuneState.start(init)
    dev = backend.device
    param = torch.nn.Parameter(state.vector.to(dev).clone())
    opt = torch.optim.Adam([param], lr=config.lr)
    if state.step:  # resume Adam where it was
        opt.state[param] = {
            "step": torch.tensor(float(state.step)),
            "exp_avg": state.exp_avg.to(dev).clone(),
            "exp_avg_sq": state.exp_avg_sq.to(dev).clone(),
        }
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    total = total_steps + len(val) * (config.epochs + 1)

    def done_units() -> int:
        return state.step + len(val) * (state.epoch + (1 if state.history else 0))

    def judge(train_loss: float | None) -> Progress:
        acc, loss = _validate(backend, val, param.detach(), layer, config.batch_size)
        state.history.append({"epoch": state.epoch, "train_loss": train_loss, "val_accuracy": acc, "val_loss": loss})
        if acc > state.best_accuracy or (acc == state.best_accuracy and loss < state.best_loss):
            state.best, state.best_epoch, state.best_accuracy, state.best_loss = (
                param.detach().float().cpu().clone(),
                state.epoch,
                acc,
                loss,
            )
        return Progress(
            done_units(),
            total,
            f"epoch {state.epoch}: validation {acc:.3f}",
            {
                "epoch": state.epoch,
                "val_accuracy": acc,
                "val_loss": loss,
                "history": [dict(h) for h in state.history],
                "best": state.best,
                "best_epoch": state.best_epoch,
                "state": state,
            },
        )

    model = backend.model
    with frozen(model):
        if not state.history:  # epoch 0: the starting vector
            with torch.no_grad():
                yield judge(None)
        while state.epoch < config.epochs:
            order = list(train)
            random.Random(f"{config.seed}:{state.epoch}").shuffle(order)  # same order on resume
            losses = []
            for chunk in batches(order, config.batch_size):
                lr = config.lr
                if config.schedule == "cosine":
                    lr = 0.5 * config.lr * (1 + math.cos(math.pi * min(state.step, total_steps) / total_steps))
                for g in opt.param_groups:
                    g["lr"] = lr
                batch = backend.encode(chunk)
                with add_vector(backend, layer, param):
                    logits = backend.run(batch)
                loss = torch.nn.functional.cross_entropy(logits, batch.answer_ids)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                state.step += 1
                losses.append(float(loss.detach()))
                yield Progress(
                    done_units(),
                    total,
                    f"epoch {state.epoch + 1}/{config.epochs}",
                    {"loss": losses[-1], "step": state.step, "lr": lr},
                )
            state.epoch += 1
            st = opt.state[param]
            state.vector = param.detach().float().cpu().clone()
            state.exp_avg, state.exp_avg_sq = (
                st["exp_avg"].detach().cpu().clone(),
                st["exp_avg_sq"].detach().cpu().clone(),
            )
            with torch.no_grad():
                yield judge(sum(losses) / len(losses))
    return state


def random_init(d_model: int, norm: float, seed: int) -> torch.Tensor:
    """A random direction with the given norm (the "random" starting point)."""
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(d_model, generator=g)
    return v * (norm / v.norm())
