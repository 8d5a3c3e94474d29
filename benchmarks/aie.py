"""AIE benchmark: the reference per-head loop against the fast exact path, side by side, on the
bundled model, on a random model with the paper's geometry (32 layers x 32 heads, cross-attention
every 2 layers; small widths so that it fits on a CPU) and on a random Qwen3-VL with Qwen3-VL-4B's
(36 layers x 32 query heads over 8 key/value heads; small widths), with 4-shot corrupted prompts.

Prints, per model: prompts/s and head-patches/s of both methods, the speedup, the largest |AIE
difference| on the prompts both ran, peak memory, and the limit: how much cheaper it is to
recompute the last position alone through the layers above a patch (measured per layer, times
(L - 1) / 2, against a full forward pass of one prompt) and how close the fast path gets to it.
Also the attribution preview's speed and its rank correlation with the exact AIE. The last line,
for the paper-shaped model, reads
`aie speedup=<ratio> max_abs_diff=<value>`, and for the Qwen3-VL-shaped one
`aie-qwen3vl speedup=<ratio> max_abs_diff=<value>`.

    .venv/bin/python benchmarks/aie.py [--device cpu|cuda] [--dtype fp32|bf16] [--ref-prompts 4]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from mfv_desktop.backends.openflamingo import OpenFlamingoBackend
from mfv_desktop.backends.qwen3vl import Qwen3VLBackend, build_small_qwen3vl
from mfv_desktop.backends.small import SmallConfig, build_small_model
from mfv_desktop.fv import average_indirect_effect, mean_head_activations
from mfv_desktop.fv.fast import attribution_preview, fast_average_indirect_effect, rank_correlation
from mfv_desktop.jobs import GenerateSpec, run_generate
from mfv_desktop.locations import bundled_folder
from mfv_desktop.progress import run_to_end
from mfv_desktop.scenes import load_scene_set
from mfv_desktop.tasks import TaskSpec, build_task_set

#: the paper's OpenFlamingo-4B geometry at small widths
PAPER_SHAPED = SmallConfig(
    seed=0,
    n_layers=32,
    n_heads=32,
    d_model=256,
    cross_attn_every_n_layers=2,
    image_size=64,
    patch_size=16,
    vision_width=64,
    vision_layers=2,
    perceiver=(("depth", 1), ("num_latents", 16)),
    cross_attn=(("dim_head", 32), ("heads", 4)),
)
#: Qwen3-VL-4B-Instruct's text geometry (36 layers, 32 query heads over 8 key/value heads, o_proj wider
#: than d_model) at small widths, with a small vision tower and deepstack
QWEN3VL_SHAPED = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 16,
    "mrope_section": [3, 3, 2],
}
QWEN3VL_VISION = {
    "depth": 2,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "deepstack_visual_indexes": [0, 1],
}


class PeakMemory:
    """Peak resident memory (CPU) or peak allocated memory (CUDA) while the block runs, above the start."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            return self
        self.start, self.stop = self._rss(), False

        def watch():
            while not self.stop:
                self.peak = max(self.peak, self._rss() - self.start)
                time.sleep(0.005)

        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.start
        else:
            self.stop = True
            self.thread.join()


def timed(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    with PeakMemory(device) as mem:
        t = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
    return out, time.perf_counter() - t, mem.peak


def last_position_limit(backend, tasks, batch_size: int) -> tuple[float, float]:
    """(seconds for a full forward pass of one prompt, seconds for the least a head-patch needs:
    the last position alone through the layers above the patch, (L - 1) / 2 of them on average)."""
    batch = backend.encode(tasks[:batch_size])
    g = backend.geometry
    with torch.no_grad():
        backend.run(batch)  # warm up
        t = time.perf_counter()
        for _ in range(3):
            backend.run(batch)
        full = (time.perf_counter() - t) / 3 / len(batch)
        last = backend.last_position(batch)
        h = last.x_dec[0][:, None].expand(-1, 256, -1)  # the last token's state entering layer 0
        last._run(h, 0)
        t = time.perf_counter()
        for _ in range(3):
            last._run(h, 0)  # 256 columns through every layer
        per_layer = (time.perf_counter() - t) / 3 / (len(batch) * 256 * g.n_layers)
    return full, per_layer * (g.n_layers - 1) / 2


def bench(
    name: str, backend, scenes: Path, ref_prompts: int, fast_prompts: int, batch_size: int
) -> tuple[float, float]:
    dev = backend.device
    g = backend.geometry
    heads = g.n_layers * g.n_heads
    spec = dict(relations=("above",), k=4, split="bench", seed=0)
    clean = build_task_set(
        load_scene_set(scenes), scenes, TaskSpec(kind="clean", max_per_relation=fast_prompts, **spec)
    ).tasks
    corrupted = build_task_set(
        load_scene_set(scenes), scenes, TaskSpec(kind="corrupted", max_per_relation=fast_prompts, **spec)
    ).tasks
    mean = run_to_end(mean_head_activations(backend, clean, batch_size)).mean
    run_to_end(fast_average_indirect_effect(backend, corrupted[:1], mean, 1))  # warm up
    ref, t_ref, m_ref = timed(
        lambda: run_to_end(average_indirect_effect(backend, corrupted[:ref_prompts], mean, batch_size)), dev
    )
    fast_same = run_to_end(fast_average_indirect_effect(backend, corrupted[:ref_prompts], mean, batch_size))
    fast, t_fast, m_fast = timed(
        lambda: run_to_end(fast_average_indirect_effect(backend, corrupted, mean, batch_size)), dev
    )
    prev, t_prev, m_prev = timed(lambda: run_to_end(attribution_preview(backend, corrupted, mean, batch_size)), dev)
    diff = float(np.abs(ref.aie - fast_same.aie).max())
    ref_pps, fast_pps = ref_prompts / t_ref, len(corrupted) / t_fast
    speedup = fast_pps / ref_pps
    full, last = last_position_limit(backend, corrupted, batch_size)
    # the reference pays a full forward per head; the fast path, at best, a last-position row per head
    limit = full / last
    print(
        f"\n== {name}: {g.n_layers} layers x {g.n_heads} heads, d_model {g.d_model}, "
        f"{len(g.cross_attn_layers)} cross-attention layers, {backend.dtype}, {dev}"
    )
    print(f"prompt length {corrupted[0].k}-shot, {backend.encode(corrupted[:1]).inputs['input_ids'].shape[1]} tokens")
    print(
        f"reference: {ref_prompts} prompts in {t_ref:.2f} s = {ref_pps:.3f} prompts/s, "
        f"{ref_pps * heads:.0f} head-patches/s, peak memory {m_ref / 2**20:.0f} MiB"
    )
    print(
        f"fast:      {len(corrupted)} prompts in {t_fast:.2f} s = {fast_pps:.3f} prompts/s, "
        f"{fast_pps * heads:.0f} head-patches/s, peak memory {m_fast / 2**20:.0f} MiB"
    )
    print(
        f"preview:   {len(corrupted)} prompts in {t_prev:.2f} s = {len(corrupted) / t_prev:.3f} prompts/s, "
        f"peak memory {m_prev / 2**20:.0f} MiB, rank correlation with exact AIE "
        f"{rank_correlation(prev.aie, fast.aie):.3f}"
    )
    print(
        f"limit: a full forward pass {1e3 * full:.2f} ms/prompt (what the reference pays per head-patch); the "
        f"last position alone through the layers above a patch {1e3 * last:.4f} ms: at most {limit:.0f}x; "
        f"the fast path gets {speedup:.1f}x ({100 * speedup / limit:.0f}% of the limit)"
    )
    print(f"speedup {speedup:.1f}x, max |AIE difference| {diff:.2e} on {ref_prompts} prompts")
    return speedup, diff


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32")
    ap.add_argument("--ref-prompts", type=int, default=4, help="prompts the (slow) reference loop runs")
    ap.add_argument("--fast-prompts", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        scenes = Path(tmp) / "scenes"
        run_to_end(
            run_generate(
                GenerateSpec(out=str(scenes), n_scenes=max(a.fast_prompts, 8) + 8, seed=7, split="bench", canvas=400)
            )
        )
        results = {}
        kw = dict(device=a.device, dtype=a.dtype)
        results["bundled"] = bench(
            "bundled model",
            OpenFlamingoBackend.from_folder(bundled_folder(), **kw),
            scenes,
            a.ref_prompts,
            a.fast_prompts,
            a.batch_size,
        )
        paper = build_small_model(Path(tmp) / "paper-shaped", PAPER_SHAPED, model_id="paper-shaped-random")
        results["paper"] = bench(
            "paper-shaped random model",
            OpenFlamingoBackend.from_folder(paper, **kw),
            scenes,
            a.ref_prompts,
            a.fast_prompts,
            a.batch_size,
        )
        qwen = build_small_qwen3vl(Path(tmp) / "qwen3vl-shaped", 0, QWEN3VL_SHAPED, QWEN3VL_VISION)
        results["qwen3vl"] = bench(
            "Qwen3-VL-4B-shaped random model",
            Qwen3VLBackend.from_folder(qwen, **kw),
            scenes,
            a.ref_prompts,
            a.fast_prompts,
            a.batch_size,
        )
    print(f"\nwhole benchmark: {time.time() - started:.0f} s, torch threads {torch.get_num_threads()}")
    speedup, diff = results["paper"]
    print(f"aie speedup={speedup:.1f} max_abs_diff={diff:.2e}")
    speedup, diff = results["qwen3vl"]
    print(f"aie-qwen3vl speedup={speedup:.1f} max_abs_diff={diff:.2e}")


if __name__ == "__main__":
    main()
