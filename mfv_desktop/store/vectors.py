"""The store's function vectors: list, describe, rename, delete (no torch, no Qt).

Rows come back as plain dicts (the columns of `VectorRow`, plus `n_heads`, `parents` with their
labels and weights, and `children`: the composites made from the vector), so panels and the CLI can
use them outside a session. A vector that is a part of a composite is not deleted: the error names
the composite(s) to delete first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import models as m
from .db import Store
from .errors import StoreError

COLUMNS = tuple(c.name for c in m.VectorRow.__table__.columns)


def _as_dict(row: m.VectorRow, labels: dict[int, str], children: dict[int, list[int]]) -> dict[str, Any]:
    d = {c: getattr(row, c) for c in COLUMNS}
    d["heads"] = [tuple(h) for h in (row.heads or [])]
    d["n_heads"] = len(d["heads"])
    d["provenance"] = dict(row.provenance or {})
    d["parents"] = [{"id": p.parent_id, "label": labels.get(p.parent_id, ""), "weight": p.weight} for p in row.parents]
    d["children"] = [{"id": c, "label": labels.get(c, "")} for c in children.get(row.id, [])]
    return d


def _links(s: Session) -> dict[int, list[int]]:
    """parent id -> ids of the composites it is a part of."""
    out: dict[int, list[int]] = {}
    for link in s.scalars(select(m.VectorParent).order_by(m.VectorParent.composite_id)):
        out.setdefault(link.parent_id, []).append(link.composite_id)
    return out


def list_vectors(store: Store, model_id: str | None = None) -> list[dict[str, Any]]:
    """Every vector (of one model, if given), newest first, as plain dicts."""
    with store.session() as s:
        labels = {i: lb for i, lb in s.execute(select(m.VectorRow.id, m.VectorRow.label))}
        children = _links(s)
        q = select(m.VectorRow).order_by(m.VectorRow.id.desc())
        if model_id is not None:
            q = q.where(m.VectorRow.model_id == model_id)
        return [_as_dict(r, labels, children) for r in s.scalars(q)]


def get_vector(store: Store, vector_id: int) -> dict[str, Any]:
    with store.session() as s:
        row = s.get(m.VectorRow, vector_id)
        if row is None:
            raise StoreError(f"there is no vector {vector_id} in the store (see `mfv vectors`)")
        labels = {i: lb for i, lb in s.execute(select(m.VectorRow.id, m.VectorRow.label))}
        return _as_dict(row, labels, _links(s))


def count_vectors(store: Store) -> int:
    from sqlalchemy import func

    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(m.VectorRow)) or 0)


def rename_vector(store: Store, vector_id: int, label: str) -> str:
    """Give a vector a new label (the file in the store keeps the label it was made with; the row's
    label is what lists and exports use). Returns the old label."""
    label = label.strip()
    if not label:
        raise StoreError(f"vector {vector_id}: a label cannot be empty; type a name such as 'above (finetuned)'")
    with store.session() as s:
        row = s.get(m.VectorRow, vector_id)
        if row is None:
            raise StoreError(f"there is no vector {vector_id} in the store (see `mfv vectors`)")
        old, row.label = row.label, label
        return old


def _blocked(s: Session, rows: dict[int, m.VectorRow], children: dict[int, list[int]]) -> str | None:
    """Why deleting these vectors would break a composite that stays, or None."""
    blocked = []
    for i, row in rows.items():
        keep = [c for c in children.get(i, []) if c not in rows]
        if keep:
            names = ", ".join(f"{c} '{s.get_one(m.VectorRow, c).label}'" for c in keep)
            blocked.append(
                f"vector {i} '{row.label}' is a part of composite vector{'s' if len(keep) > 1 else ''} {names}"
            )
    return (
        "; ".join(blocked) + ". Delete the composite first (or together with its parts); nothing was deleted"
        if blocked
        else None
    )


def deletion_blocked(store: Store, vector_ids: Iterable[int]) -> str | None:
    """What `delete_vectors` would refuse with (composites that would lose a part), or None: to ask
    before a user is asked to confirm."""
    with store.session() as s:
        rows = {i: r for i in dict.fromkeys(int(i) for i in vector_ids) if (r := s.get(m.VectorRow, i)) is not None}
        return _blocked(s, rows, _links(s))


def delete_vectors(store: Store, vector_ids: Iterable[int]) -> list[int]:
    """Delete vectors, all or none: refused (StoreError naming them) when one of them is a part of a
    composite that stays. Composites deleted with their parts go first. Evaluations that used a
    deleted vector keep their figures (their vector id is cleared). Returns the ids deleted."""
    ids = list(dict.fromkeys(int(i) for i in vector_ids))
    with store.session() as s:
        got = {i: s.get(m.VectorRow, i) for i in ids}
        missing = [i for i, r in got.items() if r is None]
        if missing:
            raise StoreError(f"there is no vector {', '.join(map(str, missing))} in the store (see `mfv vectors`)")
        rows = {i: r for i, r in got.items() if r is not None}
        children = _links(s)
        blocked = _blocked(s, rows, children)
        if blocked:
            raise StoreError(blocked)
        # composites before their parts: a part is never deleted while a composite still points at it
        order, done = [], set()

        def visit(i: int) -> None:
            if i in done:
                return
            done.add(i)
            for c in children.get(i, []):
                if c in rows:
                    visit(c)
            order.append(i)

        for i in ids:
            visit(i)
        for i in order:
            s.delete(rows[i])
            s.flush()
        return order


def delete_vector(store: Store, vector_id: int) -> None:
    """Delete one vector; refused, naming the composites, when it is a part of one."""
    delete_vectors(store, [vector_id])


def set_defaults(store: Store, vector_id: int, layer: int, strength: float) -> tuple[int, float]:
    """Set the layer a vector is added at and its strength when a job does not name them (what the
    Layer sweep tab found best); jobs that read the vector from the store use these. Returns the old
    (layer, strength)."""
    if strength <= 0:
        raise StoreError(f"vector {vector_id}: a strength must be above 0, not {strength:g}")
    with store.session() as s:
        row = s.get(m.VectorRow, vector_id)
        if row is None:
            raise StoreError(f"there is no vector {vector_id} in the store (see `mfv vectors`)")
        if not 0 <= layer < row.n_layers:
            raise StoreError(
                f"vector {vector_id}: layer {layer} is not a layer of {row.model_id}, "
                f"which has layers 0-{row.n_layers - 1}"
            )
        old = (row.layer, row.strength)
        row.layer, row.strength = int(layer), float(strength)
        return old
