"""What a job measured, prompt by prompt, on its way to the store (store/prompts.py).

A job hands each prompt group (the answers it got on a task set under one condition) to its sink.
A store run adds it at once; a folder run (headless `--out DIR`, and the stages of chain and report
runs) writes it as `prompts/<key>.json` in its output folder, and an AIE relation's per-prompt
effects as `<relation>/prompt_effects.safetensors`: a folder run taken into a store later
(`stored.ingest`) brings its groups and effects with it. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mfv_desktop.codec import to_dict
from mfv_desktop.store.prompts import Answer
from mfv_desktop.tasks import PromptTemplate, Task, TaskSet, TaskSpec

if TYPE_CHECKING:
    from mfv_desktop.store import Store

PROMPTS_DIR = "prompts"
EFFECTS_FILE = "prompt_effects.safetensors"


def answers(
    words: Sequence[str], correct: Sequence[bool], probs: Sequence[float] | None = None, indices: Sequence[int] = ()
) -> list[Answer]:
    """Answers for prompts `indices` of a task set (default 0..n-1): the model's word (its top-1
    token, stripped), whether it was right, and P(expected answer) where measured."""
    idx = list(indices) or list(range(len(words)))
    p = [None] * len(words) if probs is None else [float(x) for x in probs]
    return [Answer(int(i), str(w).strip(), bool(c), q) for i, w, c, q in zip(idx, words, correct, p)]


def record_eval(io: Any, backend: Any, relation: str, condition: str, ts: TaskSet, r: Any, detail: dict | None = None):
    """An evaluation's answers (an fv EvalResult: predictions, correct, answer_probs) on all of `ts`
    as a group of the job's sink."""
    io.sink.prompt_group(
        relation, condition, ts, backend.template, answers(r.predictions, r.correct, r.answer_probs), detail
    )


def one_task_set(task: Task, kind: str = "zeroshot") -> TaskSet:
    """A task set of one task (an Apply image, an Analogy anchor)."""
    spec = TaskSpec(relations=(task.relation or "?",), k=task.k, kind=kind)  # type: ignore[arg-type]
    return TaskSet(spec, [task])


def group_file(folder: Path, relation: str, condition: str) -> Path:
    """Where a folder run keeps a group: one file per relation and condition (written again, it is replaced)."""
    key = hashlib.sha256(f"{relation}\0{condition}".encode()).hexdigest()[:16]
    return folder / PROMPTS_DIR / f"{key}.json"


def write_group(
    folder: Path,
    relation: str,
    condition: str,
    ts: TaskSet,
    template: PromptTemplate,
    got: Sequence[Answer],
    detail: dict[str, Any] | None = None,
) -> Path:
    from .base import write_json

    return write_json(
        group_file(folder, relation, condition),
        {
            "relation": relation,
            "condition": condition,
            "recorded": time.time(),
            "template": to_dict(template),
            "task_set": ts.to_json(),
            "answers": [to_dict(a) for a in got],
            "detail": json.loads(json.dumps(detail or {}, default=str)),
        },
    )


def read_groups(folder: Path) -> Iterator[tuple[str, str, TaskSet, PromptTemplate, list[Answer], dict[str, Any]]]:
    """The groups a folder run wrote anywhere under `folder`, in the order they were recorded. A run
    of stages (chain, report) can measure the same relation and condition in two stages (a sweep's
    0-shot and the evaluation's): such a condition is named with its stage's folder ("evaluation:
    0-shot"), and every group's detail says its stage."""
    found = []
    for path in folder.rglob(f"{PROMPTS_DIR}/*.json"):
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        d["stage"] = path.parent.parent.relative_to(folder).as_posix()
        found.append(d)
    stages: dict[tuple[str, str], set[str]] = {}
    for d in found:
        stages.setdefault((d["relation"], d["condition"]), set()).add(d["stage"])
    for d in sorted(found, key=lambda d: d.get("recorded", 0.0)):
        t = d["task_set"]
        ts = TaskSet(
            TaskSpec.from_json(t["spec"]), [Task.from_json(x) for x in t["tasks"]], t.get("scenes_hash", ""), t["meta"]
        )
        shared = len(stages[(d["relation"], d["condition"])]) > 1
        yield (
            d["relation"],
            f"{d['stage']}: {d['condition']}" if shared else d["condition"],
            ts,
            PromptTemplate(**d["template"]),
            [Answer(**a) for a in d["answers"]],
            {**d.get("detail", {}), "stage": d["stage"]},
        )


def ingest_groups(store: Store, run_id: int, folder: Path) -> int:
    """A folder run's groups into the store, for run `run_id`; returns how many."""
    from mfv_desktop.store.prompts import add_prompt_group

    n = 0
    for relation, condition, ts, template, got, detail in read_groups(folder):
        add_prompt_group(store, run_id, relation, condition, ts, template, got, detail)
        n += 1
    return n


def write_effects(folder: Path, task_set_hash: str, indices: np.ndarray, effects: np.ndarray) -> Path:
    """An AIE relation's per-prompt effects beside its aie.safetensors."""
    from .io import save_arrays

    path = folder / EFFECTS_FILE
    save_arrays(path, {"indices": indices, "effects": effects}, {"task_set_hash": task_set_hash}, dtype=None)
    return path


def read_effects(folder: Path) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(task set hash, indices, effects) written by `write_effects`, or None."""
    from safetensors import safe_open

    path = folder / EFFECTS_FILE
    if not path.is_file():
        return None
    with safe_open(str(path), framework="numpy") as f:
        meta = json.loads((f.metadata() or {}).get("meta", "{}"))
        return meta["task_set_hash"], f.get_tensor("indices"), f.get_tensor("effects")


# -- listing (`mfv prompts RUN`) -------------------------------------------------------------------
def listing(
    store: Store, run_id: int, relation: str | None = None, condition: str | None = None, wrong: bool = False
) -> list[str]:
    """Lines that list what run `run_id` measured: per group a heading with its accuracy, then per
    prompt its index, expected answer, the model's answer and ✓ or ✗."""
    from mfv_desktop.store.prompts import group_prompts, prompt_groups

    lines: list[str] = []
    for g in prompt_groups(store, run_id):
        if (relation is not None and g.relation != relation) or (condition is not None and g.condition != condition):
            continue
        _, prompts = group_prompts(store, g.id)
        lines.append(f"{g.relation} · {g.condition}: {g.n_correct}/{g.n} correct ({g.accuracy:.3f})")
        for p in prompts:
            if wrong and p.correct:
                continue
            expected = p.expected or "(unknown)"
            prob = "" if p.answer_prob is None else f"  P={p.answer_prob:.3f}"
            lines.append(f"  {p.index:>4}  {expected:<14} {p.predicted:<14} {'✓' if p.correct else '✗'}{prob}")
    return lines
