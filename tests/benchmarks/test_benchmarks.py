"""benchmarks/gpu.py runs its paper-scale code at small widths on the CPU and prints a line per model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_benchmark_small_prints_both_models():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu.py"),
            "--small",
            "--layers",
            "2",
            "--fast-prompts",
            "2",
            "--ref-prompts",
            "1",
            "--batch-size",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    for model in ("openflamingo-4b", "qwen3vl-4b"):
        line = re.search(rf"^gpu-aie model={model} (.*)$", out.stdout, re.M)
        assert line, f"no line for {model} in:\n{out.stdout[-2000:]}"
        values = dict(kv.split("=") for kv in line.group(1).split())
        assert set(values) == {"fast_pps", "ref_pps", "ratio", "peak_gib", "paper_job_min", "ref_paper_job_min"}
        assert all(float(v) > 0 for v in values.values()), line.group(0)
