"""The store's science results: AIE results (with their task sets), function vectors and evaluation
rows, added from arrays and bytes and read back hash-checked (no torch, no Qt).

Jobs write through a sink (jobs/io.py) that calls these; nothing here reads a run folder. Adding is
idempotent: an AIE result a run has already, a vector whose content is in the store, an evaluation
row the run has (same relation, condition and split) are not added again, so a resumed run adds
only what it lacks.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select

from mfv_desktop.errors import VectorFileError
from mfv_desktop.scenes import Scene as SceneData
from mfv_desktop.vector_meta import FIELDS, FIX
from mfv_desktop.vector_meta import read_vector_bytes as read_vector_bytes_checked

from . import models as m
from .db import Store
from .errors import StoreError
from .scenes import dataset_id, iter_scenes

#: what an AIE result records of the corrupted prompts it averages over (fields of fv.Matched)
AVERAGING = ("matched_only", "n_matched", "n_corrupted")
#: the AIE metadata kept with its artifacts
AIE_KEEP = (
    "relation",
    "k",
    "n_prompts",
    "corruption",
    "clean_tasks_hash",
    "corrupted_tasks_hash",
    "base_prob",
    "mean_over",
    "only_correct",
)


# -- AIE results ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class AIEData:
    """One relation's AIE result as the store holds it: the matrix (layers x heads), the mean
    activations (layers x heads x d_head) and what was kept about them."""

    id: int
    run_id: int | None
    relation: str
    model_id: str
    aie: np.ndarray
    mean: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


def add_aie_result(store: Store, run_id: int | None, aie: np.ndarray, mean: np.ndarray, meta: Mapping[str, Any]) -> int:
    """One relation's AIE result (and its clean and corrupted task sets, once per hash) as rows and
    artifacts; returns its row id (the existing row's when the run has this result already)."""
    prov = dict(meta.get("provenance", {}))
    # which corrupted prompts the AIE averages over (absent from results written before the choice
    # existed, which averaged over all): kept with the artifacts and in the row's provenance
    averaging = {k: meta[k] for k in AVERAGING if k in meta}
    keep = {k: meta[k] for k in AIE_KEEP if k in meta} | averaging
    with store.session() as s:
        aie_digest = store.artifacts.put({"aie": np.asarray(aie)}, keep)
        existing = s.scalar(
            select(m.AIEResultRow.id).where(
                m.AIEResultRow.run_id == run_id,
                m.AIEResultRow.relation == meta["relation"],
                m.AIEResultRow.aie_artifact == aie_digest,
            )
        )
        if existing is not None:
            return int(existing)
        for kind, digest in (("clean", meta["clean_tasks_hash"]), ("corrupted", meta["corrupted_tasks_hash"])):
            if s.scalar(select(m.TaskSetRow.id).where(m.TaskSetRow.hash == digest)) is None:
                s.add(
                    m.TaskSetRow(
                        hash=digest,
                        n_tasks=meta.get("n_corrupted", meta["n_prompts"]),
                        spec={
                            "kind": kind,
                            "relations": [meta["relation"]],
                            "k": meta["k"],
                            "corruption": meta["corruption"] if kind == "corrupted" else None,
                        },
                    )
                )
        row = m.AIEResultRow(
            run_id=run_id,
            relation=meta["relation"],
            model_id=prov.get("model_id", ""),
            k=meta["k"],
            n_prompts=meta["n_prompts"],
            corruption=meta["corruption"],
            clean_accuracy=meta["clean_accuracy"],
            n_layers=int(aie.shape[0]),
            n_heads=int(aie.shape[1]),
            clean_tasks_hash=meta["clean_tasks_hash"],
            corrupted_tasks_hash=meta["corrupted_tasks_hash"],
            aie_artifact=aie_digest,
            mean_artifact=store.artifacts.put({"mean": np.asarray(mean)}, keep),
            provenance={**prov, **averaging},
        )
        s.add(row)
        s.flush()
        return int(row.id)


def find_aie_result(store: Store, run_id: int, relation: str) -> int | None:
    """The id of a run's AIE result for a relation (the newest, should there be several), or None."""
    with store.session() as s:
        return s.scalar(
            select(m.AIEResultRow.id)
            .where(m.AIEResultRow.run_id == run_id, m.AIEResultRow.relation == relation)
            .order_by(m.AIEResultRow.id.desc())
            .limit(1)
        )


def aie_result_ids(store: Store, run_id: int) -> dict[str, int]:
    """relation -> AIE result id, for one run."""
    with store.session() as s:
        return {
            rel: i
            for i, rel in s.execute(
                select(m.AIEResultRow.id, m.AIEResultRow.relation)
                .where(m.AIEResultRow.run_id == run_id)
                .order_by(m.AIEResultRow.id)
            )
        }


def read_aie_result(store: Store, aie_id: int) -> AIEData:
    """An AIE result's matrix, mean activations and metadata, each artifact checked against its hash
    (ArtifactCorrupt names a changed or missing file)."""
    with store.session() as s:
        row = s.get(m.AIEResultRow, aie_id)
        if row is None:
            raise StoreError(f"there is no AIE result {aie_id} in the store (see `mfv results`)")
        cols = {c.name: getattr(row, c.name) for c in m.AIEResultRow.__table__.columns}
    aie = store.artifacts.get(cols["aie_artifact"])["aie"]
    mean = store.artifacts.get(cols["mean_artifact"])["mean"]
    meta = {**store.artifacts.meta(cols["aie_artifact"]), "clean_accuracy": cols["clean_accuracy"]}
    return AIEData(
        id=aie_id,
        run_id=cols["run_id"],
        relation=cols["relation"],
        model_id=cols["model_id"],
        aie=aie,
        mean=mean,
        meta=meta,
        provenance=dict(cols["provenance"] or {}),
    )


# -- function vectors -----------------------------------------------------------------------------
@dataclass(frozen=True)
class VectorData:
    """A function vector as the store holds it: the checked metadata of its file, the array (float32)
    and the file's sha256 (its artifact)."""

    id: int | None
    meta: dict[str, Any]
    vector: np.ndarray
    sha256: str


def vector_from_bytes(data: bytes, where: str = "vector") -> tuple[dict[str, Any], np.ndarray]:
    """(checked metadata, vector) of a function-vector file's bytes; StoreError names `where`."""
    try:
        return read_vector_bytes_checked(data)
    except VectorFileError as e:
        raise StoreError(f"{where}: {e}; {FIX}") from e


def add_vector(
    store: Store,
    run_id: int | None,
    data: bytes,
    kind: str | None = None,
    meta: Mapping[str, Any] | None = None,
    parts: Mapping[str, bytes] | None = None,
    where: str = "vector",
) -> int:
    """A function vector's file bytes as a row (once per content: the existing row's id when the same
    bytes are in the store). `meta`: its metadata when already checked (else the bytes are checked
    here). A composite's parents are found in the store by their sha256; `parts` (sha256 -> bytes)
    are parts given as files, added first as imported vectors. A vector that fails leaves no artifact
    and no row (StoreError names `where`)."""
    if meta is None:
        meta, _ = vector_from_bytes(data, where)
    digest = hashlib.sha256(data).hexdigest()
    parents_meta = meta["provenance"].get("parents", [])
    if any(part["sha256"] == digest for part in parents_meta):
        raise StoreError(
            f"{where}: field 'provenance.parents' lists the vector itself; a composite is made of other vectors; {FIX}"
        )
    for part in parents_meta:
        extra = (parts or {}).get(part["sha256"])
        if extra is not None and extra != data:
            add_vector(store, run_id, extra, kind="imported", where=str(part.get("file") or part["sha256"][:12]))
    new = not store.artifacts.path(digest).is_file()
    store.artifacts.put_bytes(data)
    try:
        with store.session() as s:
            existing = s.scalar(select(m.VectorRow.id).where(m.VectorRow.artifact == digest))
            if existing is not None:
                return int(existing)
            parents: list[m.VectorParent] = []
            for part in parents_meta:
                pid = s.scalar(select(m.VectorRow.id).where(m.VectorRow.artifact == part["sha256"]))
                if pid is not None and pid not in [p.parent_id for p in parents]:
                    parents.append(m.VectorParent(parent_id=pid, weight=float(part["weight"])))
            row = m.VectorRow(
                **{k: meta[k] for k in FIELDS},
                kind=kind or meta["provenance"].get("kind", "extracted"),
                parents=parents,
                artifact=digest,
                source_run_id=run_id,
            )
            s.add(row)
            s.flush()
            return int(row.id)
    except BaseException:
        if new:
            store.artifacts.path(digest).unlink(missing_ok=True)
        raise


def vector_id_of(store: Store, sha256: str) -> int | None:
    """The id of the vector whose file has this sha256, or None."""
    with store.session() as s:
        return s.scalar(select(m.VectorRow.id).where(m.VectorRow.artifact == sha256))


def read_vector_bytes(store: Store, vector_id: int) -> tuple[bytes, str]:
    """(the vector's file bytes, checked against its hash; the sha256)."""
    with store.session() as s:
        row = s.get(m.VectorRow, vector_id)
        if row is None:
            raise StoreError(f"there is no vector {vector_id} in the store (see `mfv vectors`)")
        digest = row.artifact
    return store.artifacts.read_bytes(digest), digest


def read_vector(store: Store, vector_id: int) -> VectorData:
    """A store vector's metadata (its file's) and array, hash-checked and checked as a vector file."""
    data, digest = read_vector_bytes(store, vector_id)
    meta, array = vector_from_bytes(data, f"vector {vector_id}")
    return VectorData(vector_id, meta, array, digest)


# -- evaluations ----------------------------------------------------------------------------------
def add_evaluations(
    store: Store,
    run_id: int | None,
    rows: Iterable[Mapping[str, Any]],
    provenance: Mapping[str, Any] | None = None,
    split: str = "",
) -> int:
    """Accuracy rows (relation, condition, n, accuracy; optional split, and the store vector the row
    measured: vector_id, or vector_sha256, its file's hash). A row's own split wins over `split`. A
    row the run has already (same relation, condition and split) is not added again. Returns the number added."""
    prov = dict(provenance or {})
    new = []
    for r in rows:
        cond = r["condition"]
        new.append(
            dict(
                model_id=prov.get("model_id", ""),
                relation=r["relation"],
                condition=cond,
                k=int(cond.split("-shot")[0]) if cond[0].isdigit() else 0,
                n=int(r["n"]),
                accuracy=float(r["accuracy"]),
                split=r.get("split") or split,
                provenance=prov,
                vector_id=r.get("vector_id")
                or (vector_id_of(store, r["vector_sha256"]) if r.get("vector_sha256") else None),
            )
        )
    with store.session() as s:
        have = Counter(
            tuple(r)
            for r in s.execute(
                select(m.EvaluationRow.relation, m.EvaluationRow.condition, m.EvaluationRow.split).where(
                    m.EvaluationRow.run_id == run_id
                )
            )
        )
        added = 0
        for r in new:
            key = (r["relation"], r["condition"], r["split"])
            if have[key] > 0:
                have[key] -= 1
                continue
            s.add(m.EvaluationRow(run_id=run_id, **r))
            added += 1
        return added


# -- data sets --------------------------------------------------------------------------------------
def dataset_scenes(store: Store, dataset: str, statuses: tuple[str, ...] = ("confirmed",)) -> list[SceneData]:
    """Every scene of a data set, image paths absolute (into the store's images)."""
    with store.session() as s:
        dataset_id(s, dataset, create=False)
    scenes = list(iter_scenes(store, dataset, statuses))
    if not scenes:
        raise StoreError(f"data set {dataset!r} has no scenes")
    return scenes
