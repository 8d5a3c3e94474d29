"""Data jobs: generate synthetic scenes, build task sets (no model needed)."""

from __future__ import annotations

from pathlib import Path

from mfv_desktop.progress import Progress
from mfv_desktop.scenes import (
    KINDS,
    OBJECTS_PER_SCENE,
    GeneratorSpec,
    generate_scenes,
    load_scene_set,
    save_scene_set,
    split_kinds,
)
from mfv_desktop.specs import GenerateSpec, TasksSpec

from .base import JobGen

__all__ = ["GenerateSpec", "TasksSpec", "run_generate", "run_tasks", "scene_kinds"]


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
        n_scenes=spec.n_scenes,
        seed=spec.seed,
        canvas=spec.canvas,
        min_size=spec.min_size or round(130 * scale),
        max_size=spec.max_size or round(230 * scale),
        size_jitter=10 * scale,
        anchor_jitter=round(200 * scale),
        distractor_gap=300 * scale,
        diagonal=spec.diagonal,
        kinds=scene_kinds(spec),
        split=spec.split,
    )
    new = []
    for scene in generate_scenes(gen_spec, out):
        new.append(scene)
        yield Progress(len(new), spec.n_scenes, f"scenes ({spec.split})")
    save_scene_set(out, kept + new)
    return {"scenes": len(new), "split": spec.split, "folder": str(out), "kinds": list(gen_spec.kinds)}


def run_tasks(spec: TasksSpec) -> JobGen:
    from .science import build_tasks

    ts = build_tasks(spec.scenes, spec.task)
    yield Progress(len(ts.tasks), len(ts.tasks), "tasks")
    ts.save(spec.out)
    return {"tasks": len(ts.tasks), "hash": ts.hash, "file": spec.out}
