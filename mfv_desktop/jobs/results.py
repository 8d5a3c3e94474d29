"""What jobs return, typed: a job that runs another reads its result by attribute (`sweep.best_layer`,
`evaluation.rows`), not by key. `summary()` is the JSON a run row and run.json record (the same keys
as before these types); for older readers a result still reads like that dict (`result["rows"]`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class JobResult(Mapping[str, Any]):
    """Base of typed job results (each a frozen dataclass)."""

    def summary(self) -> dict[str, Any]:
        """The JSON-able summary a run records."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    def __getitem__(self, key: str) -> Any:
        return self.summary()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.summary())

    def __len__(self) -> int:
        return len(self.summary())


def summary_of(result: Any) -> dict[str, Any]:
    """A job's return value as the dict a run records."""
    if isinstance(result, JobResult):
        return result.summary()
    return dict(result or {})


@dataclass(frozen=True, eq=False)
class AIEJobResult(JobResult):
    #: relation -> n_prompts, base_prob, max, argmax, clean_accuracy and how it was averaged
    relations: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ExtractResult(JobResult):
    #: where the vector went: its file (headless) or `vector:ID` (a store run)
    vector: str
    heads: list[tuple[int, int]]
    norm: float
    layer: int


@dataclass(frozen=True, eq=False)
class LayerSweepResult(JobResult):
    layers: list[int]
    strengths: list[float]
    accuracy: list[list[float]]
    mean_answer_prob: list[list[float]]
    baseline: dict[str, Any]
    best_layer: int
    best_strength: float
    best_accuracy: float
    baselines: dict[str, float]
    relation: str


@dataclass(frozen=True, eq=False)
class EvaluationResult(JobResult):
    #: relation, condition, n, accuracy, mean_answer_prob
    rows: list[dict[str, Any]]


@dataclass(frozen=True, eq=False)
class FinetuneResult(JobResult):
    vector: str
    relation: str
    layer: int
    best_epoch: int
    val_accuracy: float
    start_val_accuracy: float
    n_train: int
    n_val: int
    history: list[dict[str, Any]]
