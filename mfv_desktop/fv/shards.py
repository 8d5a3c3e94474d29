"""Batches of prompts, and where each runs: in this process, or on the workers of an executor.

The mediation, sweep and evaluation loops are sums over batches of prompts. Each batch's work is a
module-level function `fn(backend, tasks, **args)` that returns plain arrays (a `Shard`); the loop
asks `map_batches` for the batches' results in order and adds them up. Where they are computed is
the current executor's choice: this process, one batch after another (the default), or workers that
each hold the model (jobs/cluster.py: Ray actors). The batches are the same either way and are
merged in the same order, so a sharded run gives the numbers a single process gives.

The executor is chosen by whoever runs the job (`on_executor`), never by the job's spec: the same
spec runs on a laptop or on a cluster.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np

from mfv_desktop.backends import Backend, batches
from mfv_desktop.progress import Progress
from mfv_desktop.tasks import Task

T = TypeVar("T")
#: a batch's result: arrays and numbers only (they travel between processes)
Shard = dict[str, Any]
#: a batch's work: fn(backend, tasks, **args) -> Shard, defined at a module's top level
BatchFn = Callable[..., Shard]


class Executor(Protocol):
    """Where batches of prompts are computed."""

    #: how many workers compute batches now (1 in this process)
    @property
    def workers(self) -> int: ...

    def map(self, backend: Backend, fn: BatchFn, chunks: Sequence[list[Task]], args: dict[str, Any]) -> Iterator[Shard]:
        """fn(backend, chunk, **args) for every chunk, the results in the chunks' order."""
        ...

    def close(self) -> None:
        """Stop every worker (the job ended, failed or was cancelled)."""
        ...


class InProcess:
    """Every batch in this process, one after another: the default, with nothing to start."""

    workers = 1

    def map(self, backend: Backend, fn: BatchFn, chunks: Sequence[list[Task]], args: dict[str, Any]) -> Iterator[Shard]:
        for chunk in chunks:
            yield fn(backend, chunk, **args)

    def close(self) -> None:
        pass


IN_PROCESS = InProcess()
_current: contextvars.ContextVar[Executor] = contextvars.ContextVar("mfv_executor", default=IN_PROCESS)


def current_executor() -> Executor:
    return _current.get()


def map_batches(
    backend: Backend, tasks: Sequence[Task], batch_size: int, fn: BatchFn, **args: Any
) -> Iterator[tuple[list[Task], Shard]]:
    """(batch, fn's result on it) for the batches of `tasks` (backends.batches), in order, computed
    where the current executor says."""
    chunks = list(batches(tasks, batch_size))
    return zip(chunks, current_executor().map(backend, fn, chunks, args))


@contextlib.contextmanager
def in_process() -> Iterator[None]:
    """Compute in this process whatever the job's executor (a fine-tuning step's own evaluation)."""
    token = _current.set(IN_PROCESS)
    try:
        yield
    finally:
        _current.reset(token)


def on_executor(gen: Generator[Progress, None, T], executor: Executor) -> Generator[Progress, None, T]:
    """Run a job (a generator of Progress) with its batches computed by `executor`: each Progress
    says how many workers compute. Closed (cancelled), interrupted (Ctrl+C thrown in), failed or
    finished, the executor's workers are stopped. Use with `yield from`, or drive it."""
    ctx = contextvars.copy_context()
    ctx.run(_current.set, executor)
    try:
        p = ctx.run(next, gen)
        while True:
            try:
                yield dataclasses.replace(p, workers=executor.workers)
            except GeneratorExit:
                ctx.run(gen.close)
                raise
            except BaseException as e:  # noqa: BLE001 - the job's to record; it raises it again
                p = ctx.run(gen.throw, e)
            else:
                p = ctx.run(next, gen)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        executor.close()


def numpy_of(x: Any) -> np.ndarray:
    """A tensor (any device, dtype) as a numpy array, float32 for floating-point tensors."""
    if x.is_floating_point():
        x = x.float()
    return x.detach().cpu().numpy()
