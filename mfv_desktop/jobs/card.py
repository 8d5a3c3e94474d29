"""Measure a model the way the paper does, with the project's own jobs, and write the numbers down.

On fresh seeded scenes: ICL accuracy per relation and K; AIE per relation and how concentrated it
is; function vectors from the top heads, with a layer x strength sweep; zero-shot + vector; the
novel-objects split; and one-shot analogies on the unseen diagonal relations with composite
vectors, against 0-shot, 1-shot and 4-shot ICL.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from mfv_desktop.progress import as_part
from mfv_desktop.scenes import BASE_RELATIONS, DIAGONAL_RELATIONS, load_scene_set
from mfv_desktop.tasks import Task, TaskSpec, build_task_set

from .base import JobGen, write_json
from .data import GenerateSpec, run_generate
from .science import (
    AIESpec, EvaluateSpec, ExtractSpec, ModelJobSpec, SweepSpec, load_arrays, run_aie, run_evaluate, run_extract,
    run_sweep,
)


@dataclass(frozen=True)
class MeasureSpec(ModelJobSpec):
    kind = "measure"
    out: str = "runs/measure"
    #: prompts per relation for every measurement
    n_prompts: int = 500
    #: prompts per relation for AIE (the slow one: a forward pass per head per prompt)
    n_aie: int = 500
    k: int = 4
    top_k: int = 10
    strengths: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    seed: int = 1000
    batch_size: int = 32


def run_measure(spec: MeasureSpec) -> JobGen:
    out = Path(spec.out)
    scenes = str(out / "scenes")
    model = dict(model=spec.model, device=spec.device, dtype=spec.dtype, batch_size=spec.batch_size)
    n_scenes = 4 * spec.n_prompts
    splits = [("test", {}), ("extract", {}), ("novel", {"novel": True}), ("diagonal", {"diagonal": True})]
    have = {s.split for s in load_scene_set(scenes)} if (Path(scenes) / "scenes.jsonl").is_file() else set()
    for i, (split, kw) in enumerate(splits):
        if split not in have:
            yield from as_part(run_generate(GenerateSpec(out=scenes, n_scenes=n_scenes, seed=spec.seed + i,
                                                        split=split, **kw)), 0.02 * i, 0.02, f"scenes ({split})")
    card: dict[str, Any] = {"spec": spec.to_json()}
    icl_file = out / "icl" / "evaluation.json"
    if icl_file.is_file():  # a measurement interrupted after this stage reuses it
        card["icl"] = json.loads(icl_file.read_text())["rows"]
    else:
        icl = yield from as_part(run_evaluate(EvaluateSpec(
            scenes=scenes, out=str(out / "icl"), split="test", ks=(0, 1, 4, 8), n_prompts=spec.n_prompts,
            **model)), 0.08, 0.08, "ICL")
        card["icl"] = icl["rows"]
    aie_dir = str(out / "aie")
    aie = yield from as_part(run_aie(AIESpec(scenes=scenes, out=aie_dir, k=spec.k, n_prompts=spec.n_aie,
                                            split="extract", **model)), 0.16, 0.5, "AIE")
    card["aie"] = {}
    for rel in BASE_RELATIONS:
        m = load_arrays(Path(aie_dir) / rel / "aie.safetensors")["aie"]
        pos = np.clip(m, 0, None)
        top = np.sort(pos.ravel())[::-1][: spec.top_k]
        card["aie"][rel] = {**aie["relations"][rel], "top_share": float(top.sum() / max(pos.sum(), 1e-12))}
    vectors, sweeps = [], {}
    for j, rel in enumerate(BASE_RELATIONS):
        vec = str(out / "vectors" / f"{rel}.safetensors")
        ex = ExtractSpec(aie=aie_dir, relation=rel, out=vec, top_k=spec.top_k, **model)
        yield from as_part(run_extract(ex), 0.66, 0.0, f"vector ({rel})")
        sw = yield from as_part(run_sweep(SweepSpec(vector=vec, scenes=scenes, out=str(out / "sweeps" / rel),
                                                   split="extract", n_prompts=spec.n_prompts,
                                                   strengths=spec.strengths, **model)),
                               0.66 + 0.03 * j, 0.03, f"sweep ({rel})")
        yield from as_part(run_extract(replace(ex, layer=sw["best_layer"], strength=sw["best_strength"])),
                          0.78, 0.0, f"vector ({rel})")
        sweeps[rel] = sw
        vectors.append(vec)
    card["sweeps"] = sweeps
    fv = yield from as_part(run_evaluate(EvaluateSpec(
        scenes=scenes, out=str(out / "fv"), split="test", ks=(0,), vectors=tuple(vectors),
        n_prompts=spec.n_prompts, **model)), 0.78, 0.06, "0-shot + FV")
    card["fv"] = fv["rows"]
    novel = yield from as_part(run_evaluate(EvaluateSpec(
        scenes=scenes, out=str(out / "novel"), split="novel", ks=(0, 1, 4), vectors=tuple(vectors),
        n_prompts=spec.n_prompts, **model)), 0.84, 0.06, "novel objects")
    card["novel"] = novel["rows"]
    card["analogy"] = yield from as_part(_analogies(spec, scenes, vectors), 0.9, 0.1, "analogies")
    write_json(out / "measurements.json", card)
    (out / "measurements.md").write_text(render_card(card))
    return {"file": str(out / "measurements.md")}


def _analogies(spec: MeasureSpec, scenes: str, vector_files: list[str]):
    """One-shot analogies on the diagonal scenes: composite vector vs 0-, 1- and 4-shot ICL."""
    from mfv_desktop.backends import load_backend
    from mfv_desktop.fv import evaluate
    from mfv_desktop.fv.analogy import AnalogyItem, solve_all
    from mfv_desktop.fv.vector_file import FunctionVector

    from .science import check_answers

    backend = load_backend(spec.model, spec.device, spec.dtype)
    fvs = [FunctionVector.load(f) for f in vector_files]
    for f in fvs:
        f.check_fits(backend)
    zs = build_task_set(load_scene_set(scenes), scenes, TaskSpec(
        relations=DIAGONAL_RELATIONS, kind="zeroshot", split="diagonal", seed=spec.seed)).tasks
    rng = random.Random(spec.seed)
    by_rel: dict[str, list[Task]] = {}
    for t in zs:
        by_rel.setdefault(t.relation, []).append(t)
    items = []
    for t in zs:
        src = rng.choice([s for s in by_rel[t.relation] if s.query.scene_id != t.query.scene_id])
        items.append(AnalogyItem(src, t))
    check_answers(backend, [i.target for i in items] + [i.source for i in items])
    one_shot = [Task(i.target.relation, "clean", (i.source.query,), i.target.query) for i in items]
    four_shot = []
    for i in items:
        others = [s.query for s in by_rel[i.target.relation] if s.query.scene_id != i.target.query.scene_id]
        demos = rng.sample(others, min(4, len(others)))
        four_shot.append(Task(i.target.relation, "clean", tuple(demos), i.target.query))
    n = len(items)
    res = {}
    for j, (name, tasks) in enumerate((("0-shot", [i.target for i in items]), ("1-shot ICL", one_shot),
                                       ("4-shot ICL", four_shot))):
        r = yield from as_part(evaluate(backend, tasks, spec.batch_size), j / 4, 1 / 4, name)
        res[name] = _per_relation(items, r.correct)
    results = yield from as_part(solve_all(backend, items, [f.vector for f in fvs], [f.layer for f in fvs],
                                          strength=float(np.mean([f.strength for f in fvs]))), 3 / 4, 1 / 4,
                                "composite FV")
    res["composite FV"] = _per_relation(items, np.array([r.correct for r in results]))
    weights = np.array([r.weights for r in results])
    res["mean weights"] = {rel: dict(zip([f.relation for f in fvs], weights[[i.target.relation == rel for i in items]]
                                         .mean(0).round(3).tolist())) for rel in DIAGONAL_RELATIONS}
    res["n"] = n
    return res


def _per_relation(items, correct: np.ndarray) -> dict[str, float]:
    out = {rel: float(np.mean([c for i, c in zip(items, correct) if i.target.relation == rel]))
           for rel in DIAGONAL_RELATIONS}
    out["all"] = float(np.mean(correct))
    return out


def render_card(card: dict[str, Any]) -> str:
    lines = ["## In-context learning (test split, top-1 first-token accuracy)", "",
             "| relation | condition | n | accuracy |", "|---|---|---|---|"]
    lines += [f"| {r['relation']} | {r['condition']} | {r['n']} | {r['accuracy']:.3f} |" for r in card["icl"]]
    lines += ["", "## AIE (extract split)", "", "| relation | prompts | clean accuracy | max AIE | top-10 share of positive AIE |",
              "|---|---|---|---|---|"]
    lines += [f"| {rel} | {a['n_prompts']} | {a['clean_accuracy']:.3f} | {a['max']:.4f} | {a['top_share']:.3f} |"
              for rel, a in card["aie"].items()]
    lines += ["", "## Layer x strength sweep (zero-shot + FV, extract split)", ""]
    for rel, sw in card["sweeps"].items():
        lines.append(f"**{rel}** (0-shot baseline {sw['baseline']['accuracy']:.3f}; best: layer {sw['best_layer']}, "
                     f"strength {sw['best_strength']:g}, {sw['best_accuracy']:.3f})")
        lines.append("")
        lines.append("| strength | " + " | ".join(f"L{layer}" for layer in sw["layers"]) + " |")
        lines.append("|---|" + "---|" * len(sw["layers"]))
        for s, row in zip(sw["strengths"], sw["accuracy"]):
            lines.append(f"| {s:g} | " + " | ".join(f"{a:.3f}" for a in row) + " |")
        lines.append("")
    lines += ["## Zero-shot + FV at the best layer and strength (test split)", "", "| relation | condition | n | accuracy |",
              "|---|---|---|---|"]
    lines += [f"| {r['relation']} | {r['condition']} | {r['n']} | {r['accuracy']:.3f} |" for r in card["fv"]]
    lines += ["", "## Novel objects (kinds never seen in training prompts)", "", "| relation | condition | n | accuracy |",
              "|---|---|---|---|"]
    lines += [f"| {r['relation']} | {r['condition']} | {r['n']} | {r['accuracy']:.3f} |" for r in card["novel"]]
    a = card["analogy"]
    lines += ["", f"## Analogies on the unseen diagonal relations ({a['n']} one-shot items)", "",
              "| relation | " + " | ".join(k for k in a if k not in ("n", "mean weights")) + " |",
              "|---|" + "---|" * (len(a) - 2)]
    conds = [k for k in a if k not in ("n", "mean weights")]
    for rel in [*DIAGONAL_RELATIONS, "all"]:
        lines.append(f"| {rel} | " + " | ".join(f"{a[c][rel]:.3f}" for c in conds) + " |")
    lines += ["", "Mean composite weights per diagonal relation:", ""]
    lines += [f"- {rel}: {w}" for rel, w in a["mean weights"].items()]
    return "\n".join(lines) + "\n"
