"""The whole method in one job: scenes -> tasks -> AIE -> vectors -> layer sweep -> evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from mfv_desktop.progress import as_part
from mfv_desktop.scenes import path_part
from mfv_desktop.specs import AIESpec, ChainSpec, EvaluateSpec, ExtractSpec, GenerateSpec, JobSpec, SweepSpec

from .base import Gen, JobGen, OnModel, write_json
from .data import run_generate
from .mediation import run_aie
from .results import summary_of
from .science import run_evaluate, run_extract, run_sweep

__all__ = ["ChainSpec", "run_chain"]

S = TypeVar("S", bound=JobSpec)
R = TypeVar("R")


def run_chain(spec: ChainSpec) -> JobGen:
    """Vectors are extracted and their injection layer chosen (by a zero-shot layer sweep) on the
    extract split; the evaluation runs on the held-out test split."""
    out = Path(spec.out)
    scenes = str(out / "scenes")
    model = OnModel(model=spec.model, batch_size=spec.batch_size)  # every stage on the chain's model
    n_stages = 4 + 3 * len(spec.relations)
    done = 0

    def run(name: str, job: Callable[[S], Gen[R]], sub: S) -> Gen[R]:
        """One stage; its progress fills one of n_stages equal units of the chain's bar."""
        nonlocal done
        result = yield from as_part(job(sub), done / n_stages, 1 / n_stages, name)
        write_json(
            out / "stages" / f"{done:02d}-{sub.kind}.json", {"spec": sub.to_json(), "result": summary_of(result)}
        )
        done += 1
        return result

    for split, n, seed in (("extract", spec.n_extract, spec.seed), ("test", spec.n_test, spec.seed + 1)):
        yield from run(
            f"scenes ({split})",
            run_generate,
            GenerateSpec(out=scenes, n_scenes=n, seed=seed, split=split, canvas=spec.canvas),
        )
    aie = str(out / "aie")
    yield from run(
        "AIE",
        run_aie,
        AIESpec(
            scenes=scenes,
            out=aie,
            relations=spec.relations,
            k=spec.k,
            n_prompts=spec.n_prompts,
            split="extract",
            seed=spec.seed,
            **model,
        ),
    )
    vectors: list[str] = []
    for rel in spec.relations:
        vec = str(out / "vectors" / f"{path_part(rel)}.safetensors")
        extract = ExtractSpec(aie=aie, relation=rel, out=vec, top_k=spec.top_k, **model)
        yield from run(f"vector ({rel})", run_extract, extract)
        sweep = yield from run(
            f"layer sweep ({rel})",
            run_sweep,
            SweepSpec(
                vector=vec,
                scenes=scenes,
                out=str(out / "sweeps" / path_part(rel)),
                split="extract",
                n_prompts=spec.n_prompts,
                strengths=spec.strengths,
                seed=spec.seed,
                **model,
            ),
        )
        # the vector records the layer and strength where it worked best
        yield from run(
            f"vector ({rel}) at layer {sweep.best_layer}",
            run_extract,
            replace(extract, layer=sweep.best_layer, strength=sweep.best_strength),
        )
        vectors.append(vec)
    result = yield from run(
        "evaluation",
        run_evaluate,
        EvaluateSpec(
            scenes=scenes,
            out=str(out / "evaluation"),
            relations=spec.relations,
            split="test",
            ks=(0, 1, spec.k),
            vectors=tuple(vectors),
            n_prompts=spec.n_prompts,
            seed=spec.seed,
            **model,
        ),
    )
    return {"stages": done, "evaluation": result.rows}
