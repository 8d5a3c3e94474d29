"""Ray executor benchmark: the same AIE job (method "fast", folder output) in this process, on one
Ray worker and on two, on a random OpenFlamingo heavy enough that a batch's compute outweighs
Ray's cost per call; with what Ray costs to start, measured apart.

    .venv/bin/python benchmarks/cluster.py [--small] [--n-prompts 64] [--batch-size 4] [--repeat 2] [--cpus 2]

(Ray installed: the extra mfv_desktop[cluster]. About 2-4 minutes on 2 CPU cores; `--small` is the
test's, tiny, in well under a minute. Each job's figure is the fastest of `--repeat` runs, as the
machine may be busy with something else for a while. Ray runs its workers at nice 15: anything
else busy on the machine takes the CPU from them first, and not from the in-process runs, so the
Ray figures suffer most; the last line gives the load average.)

What the figures mean:

- `ray-start seconds=`: the first `connect(None, num_cpus=...)`: Ray itself started in this process
  (its local services), once per session.
- `started_s=` of a Ray line: `RayExecutor.started_s`, the workers (Ray actors) started and each
  holding the model, loaded from the model folder's path and checked by hash; paid once per job
  (`on_executor` closes the executor when the job ends), and not part of prompts/s.
- `prompts_per_s=`: clean + corrupted prompts the job processed (mean activations over the clean
  prompts, indirect effects of the corrupted ones) per second of the job, the workers already
  holding the model. In this process torch uses the machine's threads (all its cores on one
  batch at a time); each Ray CPU worker is given one CPU and torch there one thread, so two workers
  on two cores compete with one process using both: the ratio to the in-process run says what
  batch-level parallelism buys over torch's own threads (and what Ray's per-call cost takes).
  `mode=in-process-1-thread` is this process on one thread, as a worker computes: beside the
  one-worker line, what Ray's calls, and the driver's work meanwhile, cost.
- `ratio_2_over_1=`, `ratio_2_over_in_process=`: prompts/s of two workers over one, and over this process.
- `max_abs_diff=`: the largest |AIE difference| between the Ray runs and the in-process run (the
  batches are the same and summed in the same order: 0, or float noise below 1e-6).

The lines, in `key=value` form:

    ray-start seconds=<s>
    cluster-aie mode=in-process prompts=<n> seconds=<s> prompts_per_s=<p> threads=<t>
    cluster-aie mode=in-process-1-thread prompts=<n> seconds=<s> prompts_per_s=<p> threads=1
    cluster-aie mode=ray workers=1 prompts=<n> seconds=<s> prompts_per_s=<p> started_s=<s>
    cluster-aie mode=ray workers=2 prompts=<n> seconds=<s> prompts_per_s=<p> started_s=<s>
    cluster-aie ratio_2_over_1=<r> ratio_2_over_in_process=<r> max_abs_diff=<d>
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file

from mfv_desktop.backends import load_backend
from mfv_desktop.backends.small import SmallConfig, build_small_model
from mfv_desktop.fv.shards import Executor, on_executor
from mfv_desktop.jobs import AIESpec, GenerateSpec, run_aie, run_generate
from mfv_desktop.jobs.cluster import RayExecutor, connect
from mfv_desktop.progress import run_to_end
from mfv_desktop.specs import ModelRef

#: a random OpenFlamingo whose batch takes long enough on a CPU core that Ray's per-call cost is small beside it
HEAVY = SmallConfig(
    seed=0,
    n_layers=12,
    n_heads=16,
    d_model=512,
    cross_attn_every_n_layers=2,
    image_size=64,
    patch_size=16,
    vision_width=64,
    vision_layers=2,
    perceiver=(("depth", 1), ("num_latents", 16)),
    cross_attn=(("dim_head", 32), ("heads", 4)),
)
#: the same shape, tiny (--small: the test's)
SMALL = replace(
    HEAVY,
    n_layers=2,
    n_heads=4,
    d_model=64,
    cross_attn_every_n_layers=1,
    image_size=32,
    vision_width=32,
    vision_layers=1,
    perceiver=(("depth", 1), ("num_latents", 4)),
    cross_attn=(("dim_head", 16), ("heads", 2)),
)
RELATION = "above"


def run_job(spec: AIESpec, executor: Executor | None) -> tuple[int, float, np.ndarray]:
    """(prompts processed, seconds, AIE) of one run of the job, in this process or on `executor`."""
    job = run_aie(spec)
    t = time.perf_counter()
    res = run_to_end(job if executor is None else on_executor(job, executor))
    seconds = time.perf_counter() - t
    rel = res.relations[RELATION]
    prompts = rel["n_corrupted"] + rel["n_prompts"]  # the clean prompts (one per corrupted) + the corrupted run
    aie = load_file(str(Path(spec.out) / RELATION / "aie.safetensors"))["aie"]
    return prompts, seconds, aie


def best(runs: list[tuple[int, float, np.ndarray]]) -> tuple[int, float, np.ndarray]:
    """The fastest of the runs of one job (the machine may be shared: the others wait on it)."""
    return min(runs, key=lambda r: r[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="a tiny model, few prompts, one run each (the test's)")
    ap.add_argument("--n-prompts", type=int, default=0, help="corrupted prompts (default 64; 4 with --small)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument(
        "--repeat", type=int, default=0, help="runs of each mode, the fastest kept (default 2; 1 with --small)"
    )
    ap.add_argument("--cpus", type=int, default=2, help="CPUs Ray is started with")
    a = ap.parse_args()
    n_prompts = a.n_prompts or (4 if a.small else 64)
    repeat = a.repeat or (1 if a.small else 2)
    started, load = time.time(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scenes = root / "scenes"
        run_to_end(run_generate(GenerateSpec(out=str(scenes), n_scenes=n_prompts + 8, seed=0, split="a", canvas=256)))
        folder = build_small_model(root / "model", SMALL if a.small else HEAVY, model_id="cluster-bench-random")
        ref = ModelRef(model=str(folder), device="cpu", dtype="fp32")
        backend = load_backend(ref.model, ref.device, ref.dtype)  # run_aie's own load_backend finds it loaded
        g = backend.geometry
        runs = itertools.count()

        def spec(n: int = n_prompts) -> AIESpec:
            return AIESpec(
                model=ref,
                batch_size=a.batch_size,
                scenes=str(scenes),
                out=str(root / f"run-{next(runs)}"),  # a folder of its own: no run resumes another
                relations=(RELATION,),
                n_prompts=n,
                split="a",
                only_correct=False,  # a random model answers few prompts right: every prompt counts
                matched_only=False,
            )

        threads = torch.get_num_threads()
        print(
            f"model: random OpenFlamingo, {g.n_layers} layers x {g.n_heads} heads, d_model {g.d_model}; "
            f"{n_prompts} corrupted prompts, batches of {a.batch_size}; best of {repeat} runs"
        )
        run_to_end(run_aie(spec(a.batch_size)))  # the first pass's one-off costs stay out of the figures
        n0, s0, aie0 = best([run_job(spec(), None) for _ in range(repeat)])
        pps = {"in-process": n0 / s0}
        print(
            f"cluster-aie mode=in-process prompts={n0} seconds={s0:.3f} prompts_per_s={pps['in-process']:.3f} "
            f"threads={threads}"
        )
        torch.set_num_threads(1)  # this process as one Ray worker computes: what Ray's calls cost beside it
        n, s, _ = best([run_job(spec(), None) for _ in range(repeat)])
        torch.set_num_threads(threads)
        print(f"cluster-aie mode=in-process-1-thread prompts={n} seconds={s:.3f} prompts_per_s={n / s:.3f} threads=1")

        t = time.perf_counter()
        ray = connect(None, num_cpus=a.cpus)
        print(f"ray-start seconds={time.perf_counter() - t:.3f}")
        diff = 0.0
        try:
            for workers in (1, 2):
                timed = []
                for _ in range(repeat):
                    ex = RayExecutor(workers=workers)
                    ex.start(backend)  # the workers hold the model before the clock starts
                    n, s, aie = run_job(spec(), ex)  # on_executor stops the workers when the job ends
                    diff = max(diff, float(np.abs(aie - aie0).max()))
                    timed.append((n, s, ex.started_s))
                n, s, _ = min(timed, key=lambda r: r[1])
                up = min(r[2] for r in timed)
                pps[workers] = n / s
                print(
                    f"cluster-aie mode=ray workers={workers} prompts={n} seconds={s:.3f} "
                    f"prompts_per_s={pps[workers]:.3f} started_s={up:.3f}"
                )
        finally:
            ray.shutdown()
        print(
            f"cluster-aie ratio_2_over_1={pps[2] / pps[1]:.3f} "
            f"ratio_2_over_in_process={pps[2] / pps['in-process']:.3f} max_abs_diff={diff:.2e}"
        )
    # the figures assume an otherwise idle machine: a load well above the benchmark's own (about 2 on
    # 2 cores) says that something else ran too
    print(
        f"whole benchmark: {time.time() - started:.0f} s, "
        f"load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} now"
    )


if __name__ == "__main__":
    main()
