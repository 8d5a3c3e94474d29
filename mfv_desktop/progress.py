"""What long computations yield: how far they are, and what they have found so far (no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator, TypeVar

T = TypeVar("T")


@dataclass
class Progress:
    done: int
    total: int
    message: str = ""
    #: plain data (numpy arrays, numbers) a viewer can draw before the job ends
    partial: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


def within(gen: Generator[Progress, None, T], offset: int, total: int, label: str | None = None,
           extra: dict[str, Any] | None = None) -> Generator[Progress, None, T]:
    """Run a sub-computation as one stretch of a larger one: its progress is shifted by `offset` and
    reported out of `total`, `extra` is added to its partial results. Returns the sub-computation's
    result (use with `yield from`)."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        yield Progress(offset + p.done, total, label or p.message, {**p.partial, **(extra or {})})


class Cancelled(Exception):
    """A computation stopped at a yield because it was asked to."""


def drive(gen: Generator[Progress, None, T], on_progress: Callable[[Progress], None] | None = None,
          should_cancel: Callable[[], bool] | None = None) -> T:
    """Run a computation to its end, reporting each step; closes it and raises Cancelled at the
    first yield after should_cancel() turns true. Returns its result."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_progress:
            on_progress(p)
        if should_cancel and should_cancel():
            gen.close()
            raise Cancelled(f"cancelled at {p.done}/{p.total}")


def run_to_end(gen: Generator[Progress, None, T]) -> T:
    """Drive a computation without watching it; returns its result."""
    return drive(gen)


def as_part(gen: Generator[Progress, None, T], offset: float, width: float,
            label: str) -> Generator[Progress, None, T]:
    """Run a sub-computation as the [offset, offset + width) fraction of a 0..1000 progress bar,
    its messages prefixed with `label`. Returns its result (use with `yield from`)."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        yield Progress(int(1000 * (offset + width * p.fraction)), 1000, f"{label}: {p.message}", p.partial)
