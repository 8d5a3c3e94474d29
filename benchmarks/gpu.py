"""Paper scale on a GPU: the fast exact AIE and the reference per-head loop on random models with the
full geometry of OpenFlamingo-4B and Qwen3-VL-4B, bf16, on cuda.

Per model it prints the fast AIE's prompts/s over all heads with 4-shot prompts, the peak memory of
that run (torch.cuda.max_memory_allocated on cuda, the process's peak resident memory on the CPU; weights
included both ways), the reference loop's prompts/s on a few prompts, their ratio, and the time the paper's
job (4,000 prompts x all heads) would take with each, ending with one machine-readable line a model:

    gpu-aie model=openflamingo-4b fast_pps=.. ref_pps=.. ratio=.. peak_gib=.. paper_job_min=.. ref_paper_job_min=..

The models are built with random weights directly on the device in its dtype (the backends'
`random_weights`: nothing is allocated on the CPU first, no weight file is written). `--small` (the
default without CUDA) runs the same code at benchmarks/aie.py's small widths (the paper's layers and
heads), fp32, on the CPU, so that it is tested. A model that fails (out of memory, say) prints
`gpu-aie model=.. failed=..` and the next one runs; the exit status is then 1.

    .venv/bin/python benchmarks/gpu.py [--small] [--fast-prompts 64] [--ref-prompts 2] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch
from aie import PAPER_SHAPED, QWEN3VL_SHAPED, QWEN3VL_VISION, timed

from mfv_desktop.backends.openflamingo import OpenFlamingoBackend
from mfv_desktop.backends.qwen3vl import DEFAULT_SIDE, Qwen3VLBackend, build_small_qwen3vl
from mfv_desktop.backends.small import SmallConfig, build_small_model, small_vocabulary
from mfv_desktop.fv import average_indirect_effect, mean_head_activations
from mfv_desktop.fv.fast import fast_average_indirect_effect
from mfv_desktop.jobs import GenerateSpec, run_generate
from mfv_desktop.progress import run_to_end
from mfv_desktop.scenes import load_scene_set
from mfv_desktop.tasks import TaskSpec, build_task_set

#: the paper's AIE job (method.md): 4,000 corrupted prompts, every head
PAPER_PROMPTS = 4000

#: OpenFlamingo-4B-vitl-rpj3b (method.md §8, reference/openflamingo.md "Loading OpenFlamingo-4B"): the
#: open_clip ViT-L-14-quickgelu (224 px, 24 layers of 1024, patch 14), open_flamingo's default perceiver
#: (6 layers x 64 latents) and cross-attention (8 heads x 64) before every 2nd layer; the language model
#: RedPajama-INCITE-3B-v1's config.json (GPT-NeoX: 32 layers x 32 heads, hidden 2560, intermediate
#: 10240 = 4 x 2560, rotary_pct 1.0, sequential residual). Its vocabulary (GPT-NeoX's 50,277 tokens
#: plus open_flamingo's <|endofchunk|>, <image> and <PAD>, to which the factory resizes the embeddings)
#: is a word tokenizer padded to the same size, so the embedding and logit widths are the real ones.
OPENFLAMINGO_4B = replace(
    PAPER_SHAPED,
    d_model=2560,
    rotary_pct=1.0,
    parallel_residual=False,
    perceiver=(),
    cross_attn=(),
    clip_arch="ViT-L-14-quickgelu",
)
OPENFLAMINGO_VOCAB = 50277
#: Qwen3-VL-4B-Instruct's published config.json (method.md §8: 36 layers, 32 query heads of 128,
#: o_proj 4096 -> 2560; the rest as the model card's config, and transformers 4.57's Qwen3VLConfig
#: defaults where it keeps them): text hidden 2560, intermediate 9728, 8 key/value heads, vocab 151936,
#: rope_theta 5e6, mrope_section [24, 20, 20] interleaved; vision depth 24 of hidden 1024 (16 heads,
#: intermediate 4096, patch 16, merge 2, 48 x 48 = 2304 position embeddings), out_hidden 2560, deepstack
#: from vision layers [5, 11, 17]. Differences: the 4B ties its input and output embeddings (this one
#: does not: 0.78 GB more weights in bf16, the same compute), and images are resized to the 448 x 448
#: the app uses with the real preprocessor (qwen3vl.DEFAULT_SIDE: 196 image tokens each).
QWEN3VL_4B = {
    "vocab_size": 151936,
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 36,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "rope_theta": 5e6,
    "mrope_section": [24, 20, 20],
}
QWEN3VL_4B_VISION = {
    "depth": 24,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_heads": 16,
    "num_position_embeddings": 2304,
    "deepstack_visual_indexes": [5, 11, 17],
}


def build_models(tmp: Path, small: bool, device: str, dtype: str, layers: int = 0) -> dict:
    """name -> a function that builds its backend (one model on the device at a time); `layers`: keep
    only that many layers (tests), 0: the paper's."""

    def openflamingo():
        vocab = small_vocabulary()
        config: SmallConfig = PAPER_SHAPED if small else OPENFLAMINGO_4B
        config = replace(config, n_layers=layers or config.n_layers)
        if not small:
            vocab += [f"<unused{i}>" for i in range(OPENFLAMINGO_VOCAB - len(vocab))]
        folder = build_small_model(
            tmp / "openflamingo", config, model_id="openflamingo-4b-random", vocab=vocab, weights=False
        )
        return OpenFlamingoBackend.from_folder(folder, random_weights=True, device=device, dtype=dtype)

    def qwen3vl():
        text, vision = (QWEN3VL_SHAPED, QWEN3VL_VISION) if small else (QWEN3VL_4B, QWEN3VL_4B_VISION)
        text = {**text, "num_hidden_layers": layers or text["num_hidden_layers"]}
        folder = build_small_qwen3vl(
            tmp / "qwen3vl", 0, text, vision, weights=False, **({} if small else {"side": DEFAULT_SIDE})
        )
        return Qwen3VLBackend.from_folder(folder, random_weights=True, device=device, dtype=dtype)

    return {"openflamingo-4b": openflamingo, "qwen3vl-4b": qwen3vl}


def bench(name: str, backend, scenes: Path, fast_prompts: int, ref_prompts: int, batch_size: int) -> str:
    dev, g = backend.device, backend.geometry
    heads = g.n_layers * g.n_heads
    spec = dict(relations=("above",), k=4, split="bench", seed=0, max_per_relation=fast_prompts)
    scene_set = load_scene_set(scenes)
    clean = build_task_set(scene_set, scenes, TaskSpec(kind="clean", **spec)).tasks
    corrupted = build_task_set(scene_set, scenes, TaskSpec(kind="corrupted", **spec)).tasks
    mean = run_to_end(mean_head_activations(backend, clean, batch_size)).mean
    run_to_end(fast_average_indirect_effect(backend, corrupted[:1], mean, 1))  # warm up
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _, t_fast, _ = timed(lambda: run_to_end(fast_average_indirect_effect(backend, corrupted, mean, batch_size)), dev)
    # weights included: what a card (or the CPU's memory) must hold
    peak = (
        torch.cuda.max_memory_allocated(dev)
        if dev.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    )
    _, t_ref, _ = timed(
        lambda: run_to_end(
            average_indirect_effect(backend, corrupted[:ref_prompts], mean, min(batch_size, ref_prompts))
        ),
        dev,
    )
    fast_pps, ref_pps = len(corrupted) / t_fast, ref_prompts / t_ref
    tokens = backend.encode(corrupted[:1]).inputs["input_ids"].shape[1]
    print(
        f"\n== {name}: {g.n_layers} layers x {g.n_heads} heads of {g.d_head}, d_model {g.d_model}, vocab "
        f"{g.vocab_size}, {sum(p.numel() for p in backend.model.parameters()) / 1e9:.2f} B parameters, "
        f"{backend.dtype}, {dev}; {corrupted[0].k}-shot prompts of {tokens} tokens"
    )
    print(
        f"fast:      {len(corrupted)} prompts x {heads} heads in {t_fast:.1f} s = {fast_pps:.3f} prompts/s, "
        f"peak memory {peak / 2**30:.2f} GiB"
    )
    print(f"reference: {ref_prompts} prompts x {heads} heads in {t_ref:.1f} s = {ref_pps:.4f} prompts/s")
    print(
        f"the paper's job ({PAPER_PROMPTS} prompts x {heads} heads): fast {PAPER_PROMPTS / fast_pps / 60:.1f} min, "
        f"reference {PAPER_PROMPTS / ref_pps / 3600:.1f} h"
    )
    return (
        f"gpu-aie model={name} fast_pps={fast_pps:.4g} ref_pps={ref_pps:.4g} ratio={fast_pps / ref_pps:.4g} "
        f"peak_gib={peak / 2**30:.4g} paper_job_min={PAPER_PROMPTS / fast_pps / 60:.4g} "
        f"ref_paper_job_min={PAPER_PROMPTS / ref_pps / 60:.4g}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="small widths, fp32, CPU (the default without CUDA)")
    ap.add_argument("--fast-prompts", type=int, default=64)
    ap.add_argument("--ref-prompts", type=int, default=2, help="prompts the (slow) reference loop runs")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--models", default="openflamingo-4b,qwen3vl-4b")
    ap.add_argument("--layers", type=int, default=0, help="keep only this many layers (tests); 0: the paper's")
    a = ap.parse_args()
    small = a.small or not torch.cuda.is_available()
    device, dtype = ("cpu", "fp32") if small else ("cuda", "bf16")
    if not torch.cuda.is_available():
        print("no CUDA GPU here: running the small-width CPU version (the figures are not the paper's scale)")
    lines, failed = [], False
    with tempfile.TemporaryDirectory() as tmp:
        scenes = Path(tmp) / "scenes"
        run_to_end(
            run_generate(
                GenerateSpec(out=str(scenes), n_scenes=max(a.fast_prompts, 8) + 8, seed=7, split="bench", canvas=400)
            )
        )
        for name, build in build_models(Path(tmp), small, device, dtype, a.layers).items():
            if name not in a.models.split(","):
                continue
            backend = None
            try:
                t = time.perf_counter()
                backend = build()
                print(f"\n{name}: built with random weights on {device} in {time.perf_counter() - t:.1f} s")
                lines.append(bench(name, backend, scenes, a.fast_prompts, a.ref_prompts, a.batch_size))
            except Exception as e:  # noqa: BLE001 - out of memory or anything else: report it, run the next model
                traceback.print_exc()
                lines.append(f"gpu-aie model={name} failed={type(e).__name__}: {str(e).splitlines()[0][:200]}")
                failed = True
            del backend
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    print()
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
