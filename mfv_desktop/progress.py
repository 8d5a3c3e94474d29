"""What long computations yield: how far they are, and what they have found so far (no torch).

A computation is a generator: it yields `Progress` and returns its result. Whoever runs it decides
how to watch it: the GUI in a worker thread (ui/shell/workers.py), the command line with a progress
bar (cli.py), tests and scripts with `drive` or `run_to_end`. Stopping it means closing it at a
yield (`generator.close()`): GeneratorExit is raised there, so it stops between two steps and its
own `except GeneratorExit` / `finally` record what it was doing ("cancelled"); nothing else is
needed from the one who stops it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Progress:
    done: int
    total: int
    message: str = ""
    #: plain data (numpy arrays, numbers) a viewer can draw before the job ends
    partial: dict[str, Any] = field(default_factory=dict)
    #: the store run this computation records itself as. A recorded run (`jobs.stored.run_in_store`,
    #: `resume`, the store's imports) yields `Progress.run_started(id)` first, as soon as its row
    #: exists and before any work, and sets it on everything it yields after
    run_id: int | None = None
    #: how many workers compute the job's batches (fv.shards.on_executor); None: this process alone
    workers: int | None = None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @classmethod
    def run_started(cls, run_id: int) -> Progress:
        """A recorded run's first yield: which run it is, nothing measured yet."""
        return cls(0, 0, run_id=run_id)

    @property
    def is_run_start(self) -> bool:
        """Only says which run this is (see `run_started`): nothing to draw."""
        return self.run_id is not None and self.total == 0 and not self.message and not self.partial


def relay(gen: Generator[Progress, None, T], each: Callable[[Progress], Progress]) -> Generator[Progress, None, T]:
    """`gen`'s progress, each passed through `each` on its way out; returns gen's result (use with
    `yield from`). Like `yield from gen`, closing this generator closes gen at its yield, and an
    exception thrown in (or raised by `each`) is thrown into gen there, for gen to record."""
    try:
        p = next(gen)
        while True:
            try:
                yield each(p)
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as e:  # noqa: BLE001 - gen's to record; it raises it again
                p = gen.throw(e)
            else:
                p = next(gen)
    except StopIteration as stop:
        result: T = stop.value
        return result


def within(
    gen: Generator[Progress, None, T],
    offset: int,
    total: int,
    label: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Generator[Progress, None, T]:
    """Run a sub-computation as one stretch of a larger one: its progress is shifted by `offset` and
    reported out of `total`, `extra` is added to its partial results. Returns the sub-computation's
    result (use with `yield from`)."""
    return relay(gen, lambda p: Progress(offset + p.done, total, label or p.message, {**p.partial, **(extra or {})}))


class Cancelled(Exception):
    """A computation stopped at a yield because it was asked to."""


def drive(
    gen: Generator[Progress, None, T],
    on_progress: Callable[[Progress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> T:
    """Run a computation to its end in this thread, showing each step to on_progress; returns its
    result. Once should_cancel() is true at a yield, the computation is closed there (it records
    itself cancelled) and Cancelled is raised. An exception of on_progress or should_cancel (Ctrl+C
    while a progress bar draws) is thrown into the computation at that yield, so that it ends as if
    raised there (a recorded run is then marked interrupted or failed, never left running)."""
    try:
        p = next(gen)
        while True:
            try:
                if on_progress is not None:
                    on_progress(p)
                stop = should_cancel is not None and should_cancel()
            except BaseException as e:  # noqa: BLE001 - the computation's to record; it raises it again
                p = gen.throw(e)
                continue
            if stop:
                gen.close()
                raise Cancelled(f"cancelled at {p.done}/{p.total}")
            p = next(gen)
    except StopIteration as end:
        result: T = end.value
        return result


def run_to_end(gen: Generator[Progress, None, T]) -> T:
    """Drive a computation without watching it; returns its result."""
    return drive(gen)


def as_part(gen: Generator[Progress, None, T], offset: float, width: float, label: str) -> Generator[Progress, None, T]:
    """Run a sub-computation as the [offset, offset + width) fraction of a 0..1000 progress bar,
    its messages prefixed with `label`. Returns its result (use with `yield from`)."""
    return relay(
        gen, lambda p: Progress(int(1000 * (offset + width * p.fraction)), 1000, f"{label}: {p.message}", p.partial)
    )


class TextBar:
    """A tqdm progress bar on stderr that draws a job's Progress: `drive(job, bar)` (progress.drive).
    Ctrl+C while it draws is thrown into the job at its yield, as if pressed inside it: either way the
    job records itself interrupted (a run of the store: `mfv --store resume ID` goes on)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None  # a tqdm, made on the first step

    def __call__(self, p: Progress) -> None:
        if self.quiet or p.is_run_start:
            return
        from tqdm import tqdm

        bar = self.bar
        if bar is None or bar.total != p.total:
            if bar is not None:
                bar.close()
            bar = self.bar = tqdm(
                total=p.total,
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
            )
        bar.set_description_str(p.message[:48] + (f" ({p.workers} workers)" if p.workers else ""))
        bar.n = p.done
        bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
