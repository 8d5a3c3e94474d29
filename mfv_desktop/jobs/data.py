"""Data jobs: generate synthetic scenes, build task sets (no model needed)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfv_desktop.progress import Progress
from mfv_desktop.scenes import (
    BASE_RELATIONS, KINDS, OBJECTS_PER_SCENE, GeneratorSpec, generate_scenes, load_scene_set, save_scene_set, split_kinds,
)
from mfv_desktop.tasks import TaskSpec

from .base import JobGen, JobSpec


@dataclass(frozen=True)
class GenerateSpec(JobSpec):
    kind = "generate"
    out: str = ""
    n_scenes: int = 100
    seed: int = 0
    split: str = "train"
    diagonal: bool = False
    canvas: int = 800
    #: object sizes (long side, px); None: the paper's 130-230 px scaled to the canvas
    min_size: int | None = None
    max_size: int | None = None
    #: object kinds to draw from (empty: the training kinds)
    kinds: tuple[str, ...] = ()
    #: draw from the held-out kinds instead (the "novel objects" split)
    novel: bool = False
    #: how many kinds are held out for the novel-objects split
    n_novel: int = 4


def scene_kinds(spec: GenerateSpec) -> tuple[str, ...]:
    if spec.kinds:
        return tuple(spec.kinds)
    train, novel = split_kinds(KINDS, spec.n_novel, seed=0)
    if not spec.novel:
        return tuple(train)
    # a scene shows six different objects: pad the held-out kinds with as few training kinds as needed
    return tuple(novel) + tuple(train[: max(0, OBJECTS_PER_SCENE - len(novel))])


def run_generate(spec: GenerateSpec) -> JobGen:
    """Generate a split into `out`; other splits already there are kept, this split is replaced."""
    out = Path(spec.out)
    existing = load_scene_set(out) if (out / "scenes.jsonl").is_file() else []
    kept = [s for s in existing if s.split != spec.split]
    scale = spec.canvas / 800  # the paper's distances are for an 800 px canvas
    gen_spec = GeneratorSpec(
        n_scenes=spec.n_scenes, seed=spec.seed, canvas=spec.canvas,
        min_size=spec.min_size or round(130 * scale), max_size=spec.max_size or round(230 * scale), size_jitter=10 * scale, anchor_jitter=round(200 * scale),
        distractor_gap=300 * scale, diagonal=spec.diagonal, kinds=scene_kinds(spec), split=spec.split,
    )
    new = []
    for scene in generate_scenes(gen_spec, out):
        new.append(scene)
        yield Progress(len(new), spec.n_scenes, f"scenes ({spec.split})")
    save_scene_set(out, kept + new)
    return {"scenes": len(new), "split": spec.split, "folder": str(out), "kinds": list(gen_spec.kinds)}


@dataclass(frozen=True)
class TasksSpec(JobSpec):
    kind = "tasks"
    scenes: str = ""
    out: str = ""
    relations: tuple[str, ...] = BASE_RELATIONS
    k: int = 4
    task_kind: str = "clean"
    corruption: str = "paper"
    seed: int = 0
    split: str | None = None
    max_per_relation: int | None = None


def run_tasks(spec: TasksSpec) -> JobGen:
    from .science import build_tasks

    ts = build_tasks(spec.scenes, TaskSpec(
        relations=tuple(spec.relations), k=spec.k, kind=spec.task_kind, corruption=spec.corruption,  # type: ignore[arg-type]
        seed=spec.seed, split=spec.split, max_per_relation=spec.max_per_relation))
    yield Progress(len(ts.tasks), len(ts.tasks), "tasks")
    ts.save(spec.out)
    return {"tasks": len(ts.tasks), "hash": ts.hash, "file": spec.out}
