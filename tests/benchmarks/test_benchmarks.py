"""benchmarks/gpu.py runs its paper-scale code at small widths on the CPU and prints a line per model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_cluster_benchmark_small_prints_every_figure():
    """benchmarks/cluster.py runs the AIE job in this process and on 1 and 2 Ray workers, tiny."""
    pytest.importorskip("ray")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "cluster.py"), "--small"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]

    def figures(prefix: str, first: str = "") -> dict[str, float]:
        """The key=value figures of the line that starts with `prefix` (then `first`=)."""
        line = re.search(rf"^{re.escape(prefix)} ({first}.*)$", out.stdout, re.M)
        assert line, f"no line {prefix!r} in:\n{out.stdout[-2000:]}"
        return {k: float(v) for k, v in (kv.split("=") for kv in line.group(1).split())}

    assert figures("ray-start")["seconds"] > 0
    for prefix, extra in (
        ("cluster-aie mode=in-process", "threads"),
        ("cluster-aie mode=in-process-1-thread", "threads"),
        ("cluster-aie mode=ray workers=1", "started_s"),
        ("cluster-aie mode=ray workers=2", "started_s"),
    ):
        values = figures(prefix)
        assert set(values) == {"prompts", "seconds", "prompts_per_s", extra}, values
        assert values["prompts"] == 8, values  # 4 clean + 4 corrupted prompts
        assert all(v > 0 for v in values.values()), values
    ratios = figures("cluster-aie", "ratio_")
    assert set(ratios) == {"ratio_2_over_1", "ratio_2_over_in_process", "max_abs_diff"}, ratios
    assert ratios["ratio_2_over_1"] > 0 and ratios["ratio_2_over_in_process"] > 0
    assert ratios["max_abs_diff"] < 1e-6  # the same batches, summed in the same order
