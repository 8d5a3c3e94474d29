"""The long jobs on a local Ray (2 CPUs, loopback only) with 2 workers: the same numbers as in one
process, a worker killed mid-job, an interrupted run that resumes without redoing finished batches,
cancel, workers with other model files, and the app without Ray."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ray")

from mfv_desktop.compute import Compute, computed_on  # noqa: E402
from mfv_desktop.errors import BackendError  # noqa: E402
from mfv_desktop.fv.shards import on_executor  # noqa: E402
from mfv_desktop.jobs import (  # noqa: E402
    AIESpec,
    EvaluateSpec,
    ExtractSpec,
    SweepSpec,
    run_aie,
    run_evaluate,
    run_extract,
    run_sweep,
)
from mfv_desktop.jobs.cluster import RayExecutor, connect  # noqa: E402
from mfv_desktop.progress import Cancelled, drive, run_to_end  # noqa: E402
from mfv_desktop.specs import ModelRef  # noqa: E402


@pytest.fixture(scope="module")
def ray_here():
    """Ray on this machine alone: 2 CPUs, loopback, shut down after this module's tests."""
    ray = connect(None, num_cpus=2)
    yield ray
    ray.shutdown()


def _arrays(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def _on_ray(job, workers: int = 2, seen: list | None = None):
    ex = RayExecutor(workers=workers)
    progress: list = [] if seen is None else seen
    return drive(on_executor(job, ex), progress.append), ex


def _aie_spec(scenes, out, model: str, **kw) -> AIESpec:
    return AIESpec(
        scenes=str(scenes),
        out=str(out),
        relations=kw.pop("relations", ("left", "above")),
        k=1,
        n_prompts=kw.pop("n_prompts", 12),
        model=ModelRef(model=model),
        batch_size=kw.pop("batch_size", 3),
        **kw,
    )


@pytest.mark.parametrize("model", ["tiny", "bundled"])
def test_sharded_aie_sweep_and_evaluation_equal_one_process(ray_here, scene_folder, tmp_path, model):
    local, sharded = tmp_path / "local", tmp_path / "ray"
    run_to_end(run_aie(_aie_spec(scene_folder, local / "aie", model)))
    seen: list = []
    summary, ex = _on_ray(run_aie(_aie_spec(scene_folder, sharded / "aie", model)), seen=seen)
    assert ex.computed > 0 and {p.workers for p in seen} == {2}  # the progress says how many compute
    for rel in ("left", "above"):
        a, b = (_arrays(d / "aie" / rel / "aie.safetensors")["aie"] for d in (local, sharded))
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
        m_a, m_b = (_arrays(d / "aie" / rel / "mean_activations.safetensors")["mean"] for d in (local, sharded))
        np.testing.assert_allclose(m_b, m_a, rtol=0, atol=1e-6)
        assert summary["relations"][rel]["clean_accuracy"] == pytest.approx(
            json.loads((local / "aie" / rel / "aie.json").read_text())["clean_accuracy"], abs=0
        )
    # the vector from the local AIE, swept and evaluated both ways
    vec = str(tmp_path / "v.safetensors")
    m = {"model": ModelRef(model=model), "batch_size": 3}
    run_to_end(run_extract(ExtractSpec(aie=str(local / "aie"), relation="left", out=vec, top_k=4, **m)))
    sweep = {"vector": vec, "scenes": str(scene_folder), "n_prompts": 12, "strengths": (1.0, 4.0), "ks": (1,), **m}
    for method in ("fast", "reference"):
        one = run_to_end(run_sweep(SweepSpec(out=str(local / method), method=method, **sweep)))
        two, _ = _on_ray(run_sweep(SweepSpec(out=str(sharded / method), method=method, **sweep)))
        assert two.accuracy == one.accuracy and two.baselines == one.baselines  # exactly
        rows = [np.loadtxt(d / method / "sweep.csv", delimiter=",", skiprows=1) for d in (local, sharded)]
        np.testing.assert_array_equal(rows[1][:, :3], rows[0][:, :3])  # strength, layer, accuracy: exactly
        np.testing.assert_allclose(rows[1][:, 3], rows[0][:, 3], rtol=0, atol=1e-6)  # mean P(answer)
    ev = {"scenes": str(scene_folder), "relations": ("left",), "ks": (0, 1), "vectors": (vec,), "n_prompts": 12, **m}
    one = run_to_end(run_evaluate(EvaluateSpec(out=str(local / "eval"), **ev)))
    two, _ = _on_ray(run_evaluate(EvaluateSpec(out=str(sharded / "eval"), **ev)))
    assert two.rows == one.rows and len(one.rows) == 3


def test_a_worker_killed_mid_job_has_its_batches_redone_and_the_result_is_the_same(ray_here, scene_folder, tmp_path):
    spec = _aie_spec(
        scene_folder, tmp_path / "local", "tiny", relations=("left",), n_prompts=16, batch_size=2, matched_only=False
    )
    run_to_end(run_aie(spec))
    ex = RayExecutor(workers=2)
    killed: list = []

    def kill_one(p) -> None:
        if p.message.endswith("indirect effects") and not killed:
            killed.append(ex.actors[0])
            ray_here.kill(ex.actors[0])  # as if its process or machine were lost

    job = run_aie(
        _aie_spec(
            scene_folder, tmp_path / "ray", "tiny", relations=("left",), n_prompts=16, batch_size=2, matched_only=False
        )
    )
    drive(on_executor(job, ex), kill_one)
    assert killed and ex.redone >= 1 and ex.restarts == 1
    a, b = (_arrays(tmp_path / d / "left" / "aie.safetensors")["aie"] for d in ("local", "ray"))
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    effects = [_arrays(tmp_path / d / "left" / "prompt_effects.safetensors") for d in ("local", "ray")]
    for key in effects[0]:
        np.testing.assert_allclose(effects[1][key], effects[0][key], rtol=0, atol=1e-6)


def test_an_interrupted_run_resumes_without_redoing_finished_batches(ray_here, store, abs_scenes, monkeypatch):
    from mfv_desktop.jobs import mediation
    from mfv_desktop.jobs.stored import resume, run_in_store
    from mfv_desktop.store import runs as run_repo
    from mfv_desktop.store import scenes as scene_repo
    from mfv_desktop.store.results import find_aie_result, read_aie_result

    monkeypatch.setattr(mediation, "CHECKPOINT_EVERY_S", 0.0)  # every batch merged is checkpointed
    run_to_end(scene_repo.add_scenes(store, "d", abs_scenes))
    spec = _aie_spec("dataset:d", "", "tiny", relations=("left",), n_prompts=16, batch_size=2, matched_only=False)
    local_id, _ = run_to_end(run_in_store(store, spec))
    first = RayExecutor(workers=2)
    merged: list[int] = []

    def ctrl_c(p) -> None:
        if p.message.endswith("indirect effects"):
            merged.append(p.done)
            if len(merged) == 3:
                raise KeyboardInterrupt  # Ctrl+C while the progress bar draws

    with pytest.raises(KeyboardInterrupt):
        drive(on_executor(run_in_store(store, spec), first), ctrl_c)
    assert first.actors == []  # the interrupted job's workers are stopped
    run_id = max(r.id for r in run_repo.list_runs(store))
    assert run_repo.get_run(store, run_id).status == "interrupted"
    second = RayExecutor(workers=2)
    drive(on_executor(resume(store, run_id), second))
    assert run_repo.get_run(store, run_id).status == "done"
    # progress counts the 16 clean prompts, then the corrupted ones: 3 batches of 2 were merged
    assert merged == [18, 20, 22]
    assert second.computed == 8 - 3  # the clean prompts' mean and 3 batches came from the checkpoint
    one, two = (read_aie_result(store, find_aie_result(store, i, "left")) for i in (local_id, run_id))
    np.testing.assert_allclose(two.aie, one.aie, rtol=0, atol=1e-6)
    np.testing.assert_allclose(two.mean, one.mean, rtol=0, atol=1e-6)


def test_cancel_stops_every_worker(ray_here, scene_folder, tmp_path):
    ex = RayExecutor(workers=2)
    workers: list = []

    def note(p) -> None:
        workers.extend(a for a in ex.actors if a not in workers)

    job = run_aie(
        _aie_spec(
            scene_folder, tmp_path / "c", "tiny", relations=("left",), n_prompts=16, batch_size=2, matched_only=False
        )
    )
    with pytest.raises(Cancelled):
        drive(on_executor(job, ex), note, should_cancel=lambda: len(workers) >= 2)
    assert ex.actors == [] and len(workers) == 2
    for actor in workers:
        with pytest.raises(ray_here.exceptions.RayActorError):
            ray_here.get(actor.ready.remote(), timeout=30)


def test_a_worker_whose_model_files_differ_refuses_naming_the_file(ray_here, monkeypatch):
    from mfv_desktop.backends import load_backend

    backend = load_backend("tiny", "cpu", "fp32")
    real = backend.provenance()
    files = dict(real["files"])
    name = sorted(files)[0]
    files[name] = "0" * 64  # where the job was started, this file has other bytes
    monkeypatch.setattr(backend, "provenance", lambda: {**real, "files": files})
    ex = RayExecutor(workers=2)
    with pytest.raises(BackendError, match=rf"model file {name} of tiny differs .*same model files"):
        ex.start(backend)
    assert ex.actors == []


def test_without_ray_choosing_it_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))

    def job():
        yield from ()
        return {}

    with pytest.raises(BackendError, match=r"pip install 'mfv_desktop\[cluster\]'"):
        computed_on(job(), Compute("ray"))
    assert computed_on(job(), Compute()) is not None  # the local executor needs nothing


def test_mfv_runs_a_job_on_ray_workers_with_the_same_result(ray_here, scene_folder, tmp_path, capsys):
    from safetensors.numpy import load_file

    from mfv_desktop.cli import main

    common = ["aie", "--scenes", str(scene_folder), "--relations", "above", "--k", "1", "--n-prompts", "8"]
    common += ["--model", "tiny", "--batch-size", "2", "--all-corrupted"]
    assert main(["-q", *common, "--out", str(tmp_path / "local")]) == 0
    assert main(["-q", "--executor", "ray", "--workers", "2", *common, "--out", str(tmp_path / "ray")]) == 0
    a, b = (load_file(str(tmp_path / d / "above" / "aie.safetensors"))["aie"] for d in ("local", "ray"))
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    capsys.readouterr()
    assert main(["-q", "--workers", "2", *common, "--out", str(tmp_path / "x")]) == 2
    assert "--ray-address and --workers are for --executor ray" in capsys.readouterr().err
