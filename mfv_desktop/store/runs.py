"""Runs and their AIE results as the app and the CLI list them: plain records, one session each, so
that no caller runs queries on the ORM models (store/vectors.py does the same for vectors)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select

from . import models as m
from .db import Store
from .errors import StoreError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_View = TypeVar("_View", bound="DataclassInstance")


@dataclass(frozen=True)
class RunView:
    """A run of a job recorded in the store (the columns of `models.Run`)."""

    id: int
    kind: str
    spec: dict[str, Any]
    status: str
    done: int
    total: int
    message: str
    error: str | None
    out: str
    pid: int | None
    provenance: dict[str, Any]
    result: dict[str, Any] | None
    created: float
    started: float | None
    updated: float | None
    finished: float | None
    seconds: float | None


@dataclass(frozen=True)
class AIEResultView:
    """An AIE result's description (its matrices stay in the artifact store: `aie_artifact`)."""

    id: int
    run_id: int | None
    relation: str
    model_id: str
    k: int
    n_prompts: int
    corruption: str
    clean_accuracy: float
    n_layers: int
    n_heads: int
    aie_artifact: str
    mean_artifact: str
    provenance: dict[str, Any]
    created: float


def _view(cls: type[_View], row: object) -> _View:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


def list_runs(
    store: Store,
    limit: int | None = None,
    newest_first: bool = True,
    kind: str | None = None,
    status: str | None = None,
) -> list[RunView]:
    """The store's runs (of a kind, with a status), newest first unless asked otherwise."""
    q = select(m.Run).order_by(m.Run.id.desc() if newest_first else m.Run.id)
    if kind is not None:
        q = q.where(m.Run.kind == kind)
    if status is not None:
        q = q.where(m.Run.status == status)
    if limit is not None:
        q = q.limit(limit)
    with store.session() as s:
        return [_view(RunView, r) for r in s.scalars(q)]


def get_run(store: Store, run_id: int) -> RunView:
    with store.session() as s:
        row = s.get(m.Run, run_id)
        if row is None:
            raise StoreError(f"there is no run {run_id} in the store")
        return _view(RunView, row)


def list_aie_results(store: Store, run_id: int | None = None, with_run: bool = False) -> list[AIEResultView]:
    """AIE results in the order they were made: all, those of one run, or (`with_run`) those that
    still name their run."""
    q = select(m.AIEResultRow).order_by(m.AIEResultRow.id)
    if run_id is not None:
        q = q.where(m.AIEResultRow.run_id == run_id)
    elif with_run:
        q = q.where(m.AIEResultRow.run_id.is_not(None))
    with store.session() as s:
        return [_view(AIEResultView, r) for r in s.scalars(q)]
