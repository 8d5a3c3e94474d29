"""Sampling tasks from scenes the way the paper does (method.md §2-3).

- Scene i of a split serves relation i mod R (R = number of relations asked for). A scene that has
  no unique target for that relation (user data) is skipped.
- Its K demonstrations come from *other* scenes of the same split, drawn at random (seeded).
- clean: every demonstration shows the task's relation.
- corrupted, "paper": the same images and query, but the demonstrations are labelled one relation
  each, cycling in a random order through every relation the split's scenes have at their anchors
  (not only the task set's: a one-relation task set is corrupted too), then shuffled.
- corrupted, "todd" (Todd et al.): the clean demonstrations' answers are permuted among them so
  that no demonstration keeps its own answer (when two answers are the same word, as far as
  possible), so an answer no longer belongs to its image's anchor.
- zeroshot: the query alone.
A clean and a corrupted set of the same spec (kind and corruption aside) pair one to one by position:
the i-th corrupted prompt is the i-th clean prompt relabelled (same query, same demonstration scenes),
since both walk the split's scenes in order with the same skips and the same per-query RNG stream;
`check_paired` verifies it.
Everything is deterministic given the spec's seed; each query draws from its own RNG stream, so
adding scenes to a split does not change the earlier tasks.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path

from mfv_desktop.scenes.model import Scene, resolve_image

from .model import Shot, Task, TaskError, TaskSet, TaskSpec


def scenes_hash(scenes: Sequence[Scene]) -> str:
    """Content hash of scene records (ids, objects, relations; not image bytes or folders)."""
    body = [{k: v for k, v in s.to_json().items() if k not in ("image", "meta")} for s in scenes]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _shot(scene: Scene, folder: Path, relation: str, anchor: str | None = None) -> Shot | None:
    anchor = anchor or scene.anchor
    if anchor is None:
        return None
    target = scene.target(anchor, relation)
    if target is None:
        return None
    return Shot(scene.id, str(resolve_image(folder, scene).resolve()), anchor, target, relation)


def _rng(seed: int, *key: object) -> random.Random:
    h = hashlib.sha256(json.dumps([seed, *key]).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "little"))


def build_task_set(scenes: Sequence[Scene], folder: str | Path, spec: TaskSpec) -> TaskSet:
    folder = Path(folder)
    pool = [s for s in scenes if spec.split is None or s.split == spec.split]
    if not pool:
        raise TaskError(f"no scenes in split {spec.split!r}; generate or import some first")
    rels = spec.relations
    # demonstrations of each relation available in the split
    shots_by_rel = {r: [sh for s in pool if (sh := _shot(s, folder, r)) is not None] for r in rels}
    for r, shots in shots_by_rel.items():
        if not shots:
            raise TaskError(f"no scene in split {spec.split!r} has an anchor with a '{r}' target")
    # the paper's corruption relabels demonstrations with every relation the scenes have at their
    # anchors, even when the task set asks for one relation only
    label_rels = tuple(sorted({t.relation for s in pool for t in s.relations if t.object == s.anchor}))
    need = spec.k + 1 if spec.kind != "zeroshot" else 1
    tasks: list[Task] = []
    count = {r: 0 for r in rels}
    for i, scene in enumerate(pool):
        r = rels[i % len(rels)]
        if spec.max_per_relation is not None and count[r] >= spec.max_per_relation:
            continue
        query = _shot(scene, folder, r)
        if query is None:
            continue
        rng = _rng(spec.seed, scene.id, r)
        others = [sh for sh in shots_by_rel[r] if sh.scene_id != scene.id]
        if len(others) < need - 1:
            raise TaskError(
                f"relation '{r}' has {len(others) + 1} scenes in split {spec.split!r}; K={spec.k} needs at least {need}"
            )
        demos = rng.sample(others, spec.k) if spec.kind != "zeroshot" else []
        if spec.kind == "corrupted":
            demos = _corrupt(
                demos, pool_by_id={s.id: s for s in pool}, folder=folder, spec=spec, rng=rng, label_rels=label_rels
            )
        tasks.append(Task(r, spec.kind, tuple(demos), query))
        count[r] += 1
    return TaskSet(spec, tasks, scenes_hash(pool))


def _corrupt(
    demos: list[Shot],
    pool_by_id: dict[str, Scene],
    folder: Path,
    spec: TaskSpec,
    rng: random.Random,
    label_rels: tuple[str, ...],
) -> list[Shot]:
    if spec.corruption == "todd":
        answers = [d.answer for d in demos]
        perm = _derangement(answers, rng)
        return [Shot(d.scene_id, d.image, d.anchor, answers[j], "none") for d, j in zip(demos, perm)]
    if spec.corruption != "paper":
        raise TaskError(f"unknown corruption scheme {spec.corruption!r}: use 'paper' or 'todd'")
    order = list(label_rels)
    rng.shuffle(order)
    out = []
    for j, d in enumerate(demos):
        scene = pool_by_id[d.scene_id]
        # the j-th demonstration is labelled with its object in the j-th relation of the cycle; when
        # its scene lacks that relation, the next one in the cycle that it has is used
        for step in range(len(order)):
            rel = order[(j + step) % len(order)]
            sh = _shot(scene, folder, rel, anchor=d.anchor)
            if sh is not None:
                out.append(sh)
                break
        else:
            out.append(d)
    rng.shuffle(out)
    return out


def _derangement(values: list[str], rng: random.Random, tries: int = 200) -> list[int]:
    """A permutation that moves every value to a place holding a different value, if one is found;
    else one that at least moves every position."""
    n = len(values)
    if n < 2:
        return list(range(n))
    fallback = None
    for _ in range(tries):
        p = list(range(n))
        rng.shuffle(p)
        if all(values[i] != values[j] for i, j in enumerate(p)):
            return p
        if fallback is None and all(i != j for i, j in enumerate(p)):
            fallback = p
    return fallback or [*range(1, n), 0]


def pair_key(task: Task) -> tuple[str, str, str, str, tuple[str, ...]]:
    """What a clean prompt and its corrupted twin share: the relation, the query (scene, anchor,
    answer) and the demonstrations' scenes (their order and labels differ)."""
    q = task.query
    return task.relation, q.scene_id, q.anchor, q.answer, tuple(sorted(d.scene_id for d in task.demos))


def check_paired(clean: Sequence[Task], corrupted: Sequence[Task]) -> None:
    """The i-th corrupted prompt must be the i-th clean prompt relabelled; TaskError names the first that is not."""
    if len(clean) != len(corrupted):
        raise TaskError(
            f"{len(clean)} clean prompts but {len(corrupted)} corrupted ones: they are not pairs; "
            "build both from the same scenes, split, K, seed and prompt count"
        )
    for i, (c, x) in enumerate(zip(clean, corrupted)):
        if pair_key(c) != pair_key(x):
            raise TaskError(
                f"corrupted prompt {i} (scene {x.query.scene_id!r}, anchor {x.query.anchor!r}) is not "
                f"clean prompt {i} (scene {c.query.scene_id!r}, anchor {c.query.anchor!r}) relabelled; "
                "build both from the same scenes, split, K, seed and prompt count"
            )
