"""What a run measured, prompt by prompt: the task sets with their tasks, and each prompt's answer
under a condition (a prompt group: one task set of one relation, measured one way by one run).
Every accuracy the app shows comes from such a group, so that the viewer can list the prompts
behind it: images, text, expected and given answer (no torch, no Qt).

Jobs add groups through their sink (jobs/io.py); adding a group again for the same run, relation
and condition replaces it, so a resumed run does not count a prompt twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload

from mfv_desktop.codec import to_dict
from mfv_desktop.tasks import PromptTemplate, Task, TaskSet, TaskSpec

from . import models as m
from .db import Store
from .scenes import image_rel_path


@dataclass(frozen=True)
class Answer:
    """The model's answer to task `index` of a task set."""

    index: int
    predicted: str
    correct: bool
    #: P(the expected answer's first token), where it was measured
    answer_prob: float | None = None


@dataclass(frozen=True)
class Group:
    id: int
    run_id: int
    relation: str
    condition: str
    task_set_hash: str
    template: PromptTemplate
    n: int
    n_correct: int
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n if self.n else 0.0


@dataclass(frozen=True)
class Prompt:
    """One measured prompt, as the viewer shows it."""

    index: int
    task: Task
    text: str
    predicted: str
    correct: bool
    answer_prob: float | None

    @property
    def expected(self) -> str:
        return self.task.answer


def add_task_set(store: Store, ts: TaskSet, dataset_id: int | None = None) -> str:
    """Keep a task set and its tasks (once per content hash; a row recorded without its tasks gets
    them); returns the hash."""
    digest = ts.hash
    tasks = [t.to_json() for t in ts.tasks]
    with store.session() as s:
        row = s.scalar(select(m.TaskSetRow).where(m.TaskSetRow.hash == digest))
        if row is None:
            s.add(
                m.TaskSetRow(
                    hash=digest,
                    spec={**ts.spec.to_json(), "scenes_hash": ts.scenes_hash},
                    dataset_id=dataset_id,
                    n_tasks=len(tasks),
                    tasks=tasks,
                )
            )
        elif row.tasks is None:
            row.tasks = tasks
    return digest


def read_task_set(store: Store, digest: str) -> TaskSet | None:
    """A stored task set with its tasks; None when it is not stored or was recorded without them."""
    with store.session() as s:
        row = s.scalar(select(m.TaskSetRow).where(m.TaskSetRow.hash == digest))
        if row is None or row.tasks is None:
            return None
        spec, tasks = dict(row.spec), list(row.tasks)
    scenes_hash = spec.pop("scenes_hash", "")
    known = {f for f in TaskSpec.__dataclass_fields__}
    try:
        task_spec = TaskSpec.from_json({k: v for k, v in spec.items() if k in known and v is not None})
    except (TypeError, ValueError):  # a row written by add_aie_result before 0003 keeps a short spec
        task_spec = TaskSpec(relations=tuple(spec.get("relations") or ("?",)))
    return TaskSet(task_spec, [Task.from_json(t) for t in tasks], scenes_hash)


def add_prompt_group(
    store: Store,
    run_id: int,
    relation: str,
    condition: str,
    ts: TaskSet,
    template: PromptTemplate,
    answers: Sequence[Answer],
    detail: Mapping[str, Any] | None = None,
) -> int:
    """Record the answers a run got on (some of) a task set's prompts under one condition; replaces
    the group the run has for this relation and condition. Returns the group's id."""
    n_tasks = len(ts.tasks)
    for a in answers:
        if not 0 <= a.index < n_tasks:
            raise ValueError(f"answer for task {a.index} of a task set of {n_tasks} tasks")
    digest = add_task_set(store, ts)
    with store.session() as s:
        s.execute(
            delete(m.PromptGroup).where(
                m.PromptGroup.run_id == run_id, m.PromptGroup.relation == relation, m.PromptGroup.condition == condition
            )
        )
        group = m.PromptGroup(
            run_id=run_id,
            relation=relation,
            condition=condition,
            task_set_hash=digest,
            template=to_dict(template),
            detail=dict(detail or {}),
            n=len(answers),
            n_correct=sum(bool(a.correct) for a in answers),
        )
        s.add(group)
        s.flush()
        s.add_all(
            m.PromptAnswer(
                group_id=group.id,
                task_index=a.index,
                predicted=a.predicted,
                correct=bool(a.correct),
                answer_prob=None if a.answer_prob is None else float(a.answer_prob),
            )
            for a in answers
        )
        return int(group.id)


def _group(row: m.PromptGroup) -> Group:
    return Group(
        row.id,
        row.run_id,
        row.relation,
        row.condition,
        row.task_set_hash,
        PromptTemplate(**row.template),
        row.n,
        row.n_correct,
        dict(row.detail),
    )


def prompt_groups(store: Store, run_id: int) -> list[Group]:
    """A run's prompt groups, in the order they were recorded."""
    with store.session() as s:
        rows = s.scalars(select(m.PromptGroup).where(m.PromptGroup.run_id == run_id).order_by(m.PromptGroup.id))
        return [_group(r) for r in rows]


def group_prompts(store: Store, group_id: int) -> tuple[Group, list[Prompt]]:
    """A group and its prompts (task, text as the model read it, answers), in task order. A group
    whose task set was recorded without its tasks has no prompts to show."""
    with store.session() as s:
        row = s.get(m.PromptGroup, group_id)
        if row is None:
            raise KeyError(f"no prompt group {group_id}")
        group = _group(row)
        answers = list(
            s.scalars(
                select(m.PromptAnswer).where(m.PromptAnswer.group_id == group_id).order_by(m.PromptAnswer.task_index)
            )
        )
        got = [(a.task_index, a.predicted, a.correct, a.answer_prob) for a in answers]
    ts = read_task_set(store, group.task_set_hash)
    if ts is None:
        return group, []
    return group, [
        Prompt(i, ts.tasks[i], group.template.render(ts.tasks[i]), predicted, correct, prob)
        for i, predicted, correct, prob in got
    ]


# -- each head's effect on each prompt (the head drill-down) --------------------------------------
@dataclass(frozen=True)
class PromptEffects:
    """The indirect effect of every head on every corrupted prompt an AIE result averages over:
    `effects[i]` is prompt `indices[i]` of the task set `task_set_hash` (layers x heads)."""

    aie_id: int
    task_set_hash: str
    indices: np.ndarray  # (n,) int
    effects: np.ndarray  # (n, n_layers, n_heads)


def add_prompt_effects(
    store: Store, aie_id: int, task_set_hash: str, indices: Sequence[int], effects: np.ndarray
) -> str:
    """Keep an AIE result's per-prompt effects (an artifact named in the result's provenance);
    returns the artifact's hash."""
    effects = np.asarray(effects, dtype=np.float32)
    idx = np.asarray(indices, dtype=np.int64)
    if effects.ndim != 3 or len(idx) != len(effects):
        raise ValueError(f"{len(idx)} prompt indices for effects of shape {effects.shape}: expected (n, layers, heads)")
    with store.session() as s:
        row = s.get(m.AIEResultRow, aie_id)
        if row is None:
            raise KeyError(f"no AIE result {aie_id}")
        if (row.n_layers, row.n_heads) != effects.shape[1:]:
            raise ValueError(
                f"effects of shape {effects.shape} for an AIE result of {row.n_layers} x {row.n_heads} heads"
            )
        digest = store.artifacts.put({"indices": idx, "effects": effects}, {"task_set_hash": task_set_hash})
        row.provenance = {**row.provenance, "prompt_effects": digest}
    return digest


def read_prompt_effects(store: Store, aie_id: int) -> PromptEffects | None:
    """An AIE result's per-prompt effects, hash-checked; None for a result recorded without them."""
    with store.session() as s:
        row = s.get(m.AIEResultRow, aie_id)
        if row is None:
            raise KeyError(f"no AIE result {aie_id}")
        digest = row.provenance.get("prompt_effects")
    if digest is None:
        return None
    arrays = store.artifacts.get(digest)
    return PromptEffects(aie_id, store.artifacts.meta(digest)["task_set_hash"], arrays["indices"], arrays["effects"])


# -- a prompt's images, found again -----------------------------------------------------------------
@dataclass(frozen=True)
class ShotImage:
    """Where a shot's image is now (None: nowhere to be found) and the boxes of its scene's objects
    by name, when the scene is in the store (to outline the anchor and the answer)."""

    path: Path | None
    boxes: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)


def shot_image(store: Store, scene_id: str, image: str) -> ShotImage:
    """A shot's image: the path the task recorded; else the store's copy of that file (images are
    kept by content, so a moved data folder still has it); else the image of the store's scene
    named `scene_id`. The boxes come from that scene (the first of that name with this image)."""
    recorded = Path(image) if image else None
    with store.session() as s:
        rows = list(
            s.scalars(
                select(m.Scene)
                .where(m.Scene.name == scene_id)
                .order_by(m.Scene.id)
                .options(selectinload(m.Scene.objects), selectinload(m.Scene.image))
            )
        )
        scenes = [(store.data_dir / r.image.path, {o.name: (o.x0, o.y0, o.x1, o.y1) for o in r.objects}) for r in rows]
    candidates: list[Path] = []
    if recorded is not None:
        candidates += [recorded, store.data_dir / image_rel_path(recorded.name)]
    candidates += [p for p, _ in scenes]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        return ShotImage(None)
    return ShotImage(path, next((boxes for p, boxes in scenes if p.name == path.name), {}))
