"""The whole method in one job: scenes -> tasks -> AIE -> vectors -> layer sweep -> evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mfv_desktop.progress import Progress
from mfv_desktop.scenes import BASE_RELATIONS

from .base import JobGen, write_json
from .data import GenerateSpec, run_generate
from .science import (
    AIESpec, EvaluateSpec, ExtractSpec, ModelJobSpec, SweepSpec, run_aie, run_evaluate, run_extract, run_sweep,
)


@dataclass(frozen=True)
class ChainSpec(ModelJobSpec):
    kind = "chain"
    out: str = ""
    relations: tuple[str, ...] = BASE_RELATIONS
    #: scenes to find heads and extract vectors on, and held-out scenes to test on
    n_extract: int = 64
    n_test: int = 32
    k: int = 4
    #: prompts per relation for AIE, sweep and evaluation
    n_prompts: int = 16
    top_k: int = 10
    canvas: int = 800
    seed: int = 0


def run_chain(spec: ChainSpec) -> JobGen:
    out = Path(spec.out)
    scenes = str(out / "scenes")
    model = dict(model=spec.model, device=spec.device, dtype=spec.dtype, batch_size=spec.batch_size)
    stages = [
        ("scenes (extract)", run_generate, GenerateSpec(out=scenes, n_scenes=spec.n_extract, seed=spec.seed,
                                                         split="extract", canvas=spec.canvas)),
        ("scenes (test)", run_generate, GenerateSpec(out=scenes, n_scenes=spec.n_test, seed=spec.seed + 1,
                                                      split="test", canvas=spec.canvas)),
        ("AIE", run_aie, AIESpec(scenes=scenes, out=str(out / "aie"), relations=spec.relations, k=spec.k,
                                 n_prompts=spec.n_prompts, split="extract", seed=spec.seed, **model)),
    ]
    vectors = [str(out / "vectors" / f"{r}.safetensors") for r in spec.relations]
    for rel, vec in zip(spec.relations, vectors):
        stages.append((f"vector ({rel})", run_extract, ExtractSpec(aie=str(out / "aie"), relation=rel, out=vec,
                                                                   top_k=spec.top_k, **model)))
    for rel, vec in zip(spec.relations, vectors):
        stages.append((f"layer sweep ({rel})", run_sweep, SweepSpec(
            vector=vec, scenes=scenes, out=str(out / "sweeps" / rel), split="test", n_prompts=spec.n_prompts,
            seed=spec.seed, **model)))
    stages.append(("evaluation", run_evaluate, EvaluateSpec(
        scenes=scenes, out=str(out / "evaluation"), relations=spec.relations, split="test", ks=(0, 1, spec.k),
        vectors=tuple(vectors), n_prompts=spec.n_prompts, seed=spec.seed, **model)))

    results = {}
    n = len(stages)
    for i, (name, job, sub) in enumerate(stages):
        gen = job(sub)
        while True:
            try:
                p = next(gen)
            except StopIteration as stop:
                results[name] = stop.value
                break
            # progress in stage units, each stage's own fraction inside its unit
            yield Progress(i * 1000 + int(1000 * p.fraction), n * 1000, f"{name}: {p.message}", p.partial)
        write_json(out / "stages" / f"{i:02d}-{sub.kind}.json", {"spec": sub.to_json(), "result": results[name]})
    return {"stages": list(results), "evaluation": results["evaluation"]["rows"]}
