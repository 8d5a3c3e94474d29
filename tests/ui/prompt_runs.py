"""Runs with their prompts recorded, made through the store's API (what the jobs record): scenes with
images in the store, an AIE run with clean and corrupted groups and each head's effect on each
prompt, an AIE run recorded before prompts were kept, and a sweep run with its groups."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from mfv_desktop.scenes import Box, SceneObject
from mfv_desktop.store import models as m
from mfv_desktop.store import scenes as repo
from mfv_desktop.store.prompts import Answer, add_prompt_effects, add_prompt_group
from mfv_desktop.store.results import add_aie_result
from mfv_desktop.tasks import OPENFLAMINGO_TEMPLATE, Shot, Task, TaskSet, TaskSpec

N_LAYERS, N_HEADS, N_PROMPTS = 3, 4, 6
#: the head the tests drill into, and its effect on corrupted prompts 0..5
HEAD = (1, 2)
HEAD_EFFECTS = [0.30, -0.20, 0.05, 0.50, -0.45, 0.10]
#: the corrupted prompts the model gets right
RIGHT = {0, 2, 3}


@dataclass
class Made:
    aie_run: int
    old_run: int
    sweep_run: int
    apply_run: int  # on an image without labels: no expected answer
    aie: np.ndarray  # the "above" map


def _run(store, kind: str, result: dict | None = None) -> int:
    with store.session() as s:
        run = m.Run(
            kind=kind,
            spec={"model": {"model": "bundled", "device": "cpu", "dtype": "fp32"}},
            status="done",
            provenance={"model_id": "bundled"},
            result=result,
        )
        s.add(run)
        s.flush()
        return int(run.id)


def _scenes(store, tmp_path) -> list[tuple[str, str]]:
    """(scene name, image path in the store) of six scenes with a cup under a ball."""
    out = []
    for i in range(N_PROMPTS):
        path = tmp_path / f"photo{i}.png"
        img = Image.new("RGB", (160, 120), (230, 230 - 30 * i, 200))
        d = ImageDraw.Draw(img)
        d.rectangle((60, 70, 100, 110), fill=(200, 40, 40))
        d.ellipse((65, 10, 95, 40), fill=(40, 40, 200))
        img.save(path)
        objects = [SceneObject("cup", Box(60, 70, 100, 110)), SceneObject("ball", Box(65, 10, 95, 40))]
        sid = repo.create_scene(store, "sample", path, name=f"s{i}", objects=objects, anchor="cup")
        out.append((f"s{i}", repo.get_scene(store, sid)[0].image))
    return out


def _task_set(scenes, kind: str) -> TaskSet:
    """One-shot tasks: scene i+1 demonstrates, scene i is asked. Prompt 4's query image was moved
    away (the store still has its scene); prompt 5's query is a scene the store never had."""
    tasks = []
    for i, (name, image) in enumerate(scenes):
        demo_name, demo_image = scenes[(i + 1) % len(scenes)]
        demo = Shot(demo_name, demo_image, "cup", "ball" if kind == "clean" else "table", "above")
        if i == 4:
            image = "/moved/away/photo4.png"
        if i == 5:
            name, image = "gone", "/moved/away/gone.png"
        tasks.append(Task("above", kind, (demo,), Shot(name, image, "cup", "ball", "above")))  # type: ignore[arg-type]
    return TaskSet(TaskSpec(relations=("above",), k=1, kind=kind), tasks, scenes_hash="test")  # type: ignore[arg-type]


def make_runs(store, tmp_path) -> Made:
    scenes = _scenes(store, tmp_path)
    clean, corrupted = _task_set(scenes, "clean"), _task_set(scenes, "corrupted")
    rng = np.random.default_rng(0)
    effects = rng.normal(0, 0.05, size=(N_PROMPTS, N_LAYERS, N_HEADS)).astype(np.float32)
    effects[:, HEAD[0], HEAD[1]] = HEAD_EFFECTS
    aie = effects.mean(axis=0)
    meta = {
        "k": 1,
        "n_prompts": N_PROMPTS,
        "corruption": "paper",
        "clean_accuracy": 0.5,
        "clean_tasks_hash": clean.hash,
        "corrupted_tasks_hash": corrupted.hash,
        "provenance": {"model_id": "bundled"},
    }
    aie_run = _run(store, "aie")
    above = add_aie_result(store, aie_run, aie, np.zeros((N_LAYERS, N_HEADS, 2)), {**meta, "relation": "above"})
    add_prompt_effects(store, above, corrupted.hash, range(N_PROMPTS), effects)
    # "below": a result recorded without per-prompt effects
    add_aie_result(store, aie_run, aie * 0.5, np.zeros((N_LAYERS, N_HEADS, 2)), {**meta, "relation": "below"})
    t = OPENFLAMINGO_TEMPLATE
    add_prompt_group(store, aie_run, "above", "clean", clean, t, [Answer(i, "ball", True, 0.8) for i in range(5)])
    add_prompt_group(
        store,
        aie_run,
        "above",
        "corrupted",
        corrupted,
        t,
        [Answer(i, "ball" if i in RIGHT else "table", i in RIGHT, 0.1 * (i + 1)) for i in range(N_PROMPTS)],
    )

    old_run = _run(store, "aie")
    add_aie_result(store, old_run, aie, np.zeros((N_LAYERS, N_HEADS, 2)), {**meta, "relation": "above"})

    sweep = {
        "relation": "above",
        "layers": [0, 1, 2],
        "strengths": [1.0, 2.0],
        "accuracy": [[0.2, 0.4, 0.3], [0.3, 0.8, 0.5]],
        "baselines": {"0-shot": 0.1},
        "best_layer": 1,
        "best_strength": 2.0,
        "best_accuracy": 0.8,
    }
    sweep_run = _run(store, "sweep", sweep)
    zero = TaskSet(
        TaskSpec(relations=("above",), k=0, kind="zeroshot"),
        [Task("above", "zeroshot", (), task.query) for task in clean.tasks],
        scenes_hash="test",
    )
    add_prompt_group(store, sweep_run, "above", "0-shot", zero, t, [Answer(i, "table", False) for i in range(5)])
    for layer in (0, 1, 2):
        for s in (1.0, 2.0):
            answers = [Answer(i, "ball", i < 1 + layer + s, None) for i in range(5)]
            add_prompt_group(store, sweep_run, "above", f"L{layer} ×{s:g}", zero, t, answers, {"layer": layer})
    apply_run = _run(store, "apply")
    one = TaskSet(TaskSpec(relations=("above",), k=0, kind="zeroshot"), zero.tasks[:1], scenes_hash="test")
    unknown = {"expected_known": False}
    add_prompt_group(store, apply_run, "above", "0-shot", one, t, [Answer(0, "table", False, 0.4)], unknown)
    add_prompt_group(store, apply_run, "above", "with vectors", one, t, [Answer(0, "ball", False, 0.7)], unknown)
    return Made(aie_run, old_run, sweep_run, apply_run, aie)
