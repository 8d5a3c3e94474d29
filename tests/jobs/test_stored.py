"""Jobs recorded in the store, the CLI on a store, and crashes: kill -9 in the middle of a large
import and of an AIE job leaves a sound database, every committed label, and a resumable run."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mfv_desktop.progress import drive, run_to_end
from mfv_desktop.store import models as m
from mfv_desktop.store import open_store
from mfv_desktop.store import scenes as repo


def mfv(*args: str, wait: bool = True):
    cmd = [sys.executable, "-m", "mfv_desktop.cli", "-q", *args]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ), timeout=600)


def _count(db: Path, sql: str) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        con.close()


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    t0 = time.time()
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the process ended before it could be killed: {proc.stderr.read()[-2000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            pytest.fail("timed out waiting for the process")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_job_records_its_run_and_its_results(store, abs_scenes):
    from mfv_desktop.jobs import AIESpec, EvaluateSpec, ExtractSpec
    from mfv_desktop.jobs.stored import run_in_store

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    seen = []
    rid, summary = drive(
        run_in_store(
            store,
            AIESpec(
                scenes="dataset:gen", relations=("above",), k=1, n_prompts=4, split="a", batch_size=2, model="tiny"
            ),
        ),
        seen.append,
    )
    with store.session() as s:
        run = s.get(m.Run, rid)
        assert run.status == "done" and run.kind == "aie" and run.spec["scenes"] == "dataset:gen"
        assert run.done == run.total and run.seconds > 0 and run.error is None
        (res,) = s.query(m.AIEResultRow).all()
        assert res.run_id == rid and res.relation == "above" and res.model_id == "tiny-openflamingo-s0"
        assert (res.n_layers, res.n_heads, res.n_prompts) == (4, 4, 4)
        sets = {t.hash: t.spec["kind"] for t in s.query(m.TaskSetRow)}
        assert sets == {res.clean_tasks_hash: "clean", res.corrupted_tasks_hash: "corrupted"}
        aie = store.artifacts.get(res.aie_artifact)["aie"]
        assert aie.shape == (4, 4) and summary["relations"]["above"]["max"] == pytest.approx(aie.max(), abs=1e-6)
    assert (store.runs_dir / str(rid) / "run.json").is_file()
    assert len(seen) > 1
    aie_folder = str(store.runs_dir / str(rid))
    rid2, _ = run_to_end(run_in_store(store, ExtractSpec(aie=aie_folder, relation="above", top_k=3, model="tiny")))
    with store.session() as s:
        (vec,) = s.query(m.VectorRow).all()
        assert vec.source_run_id == rid2 and vec.relation == "above" and len(vec.heads) == 3
        vfile = store.artifacts.path(vec.artifact)
    rid3, _ = run_to_end(
        run_in_store(
            store,
            EvaluateSpec(
                scenes="dataset:gen",
                split="b",
                ks=(0, 1),
                vectors=(str(vfile),),
                n_prompts=3,
                relations=("above",),
                model="tiny",
            ),
        )
    )
    with store.session() as s:
        rows = s.query(m.EvaluationRow).filter_by(run_id=rid3).all()
        assert {r.condition.split(" '")[0] for r in rows} == {"0-shot", "1-shot ICL", "0-shot + FV"}
        assert all(r.n == 3 and r.split == "b" for r in rows)
        aie_id = s.query(m.AIEResultRow).one().id
    # tables and matrices go out as CSV and NPY
    from mfv_desktop.store.exchange import export_aie, export_evaluations

    csv_path, npy_path = export_aie(store, aie_id, store.data_dir / "out")
    np.testing.assert_array_equal(np.load(npy_path, allow_pickle=False), aie)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "layer,head0,head1,head2,head3" and len(lines) == 5
    table = export_evaluations(store, store.data_dir / "out" / "ev.csv", run_id=rid3).read_text().splitlines()
    assert len(table) == 1 + len(rows) and table[0].startswith("run_id,model_id,relation,condition")


def test_a_failed_job_is_recorded_with_its_error(store):
    from mfv_desktop.jobs import AIESpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.scenes import SceneError
    from mfv_desktop.store import StoreError

    with pytest.raises(StoreError, match="no data set named 'nope'"):
        run_to_end(run_in_store(store, AIESpec(scenes="dataset:nope", model="tiny")))
    with pytest.raises(SceneError, match="no scene set at"):
        run_to_end(run_in_store(store, AIESpec(scenes=str(store.data_dir / "missing"), model="tiny")))
    with store.session() as s:
        runs = s.query(m.Run).order_by(m.Run.id).all()
        assert [r.status for r in runs] == ["failed", "failed"]
        assert "no data set named 'nope'" in runs[0].error and "no scene set at" in runs[1].error


def test_a_cancelled_run_is_recorded_and_resumes(store, abs_scenes):
    from mfv_desktop.jobs import AIESpec, Cancelled
    from mfv_desktop.jobs.stored import resume, run_in_store

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    spec = AIESpec(scenes="dataset:gen", relations=("above",), k=1, n_prompts=4, split="a", batch_size=1, model="tiny")
    seen: list = []
    with pytest.raises(Cancelled):
        drive(run_in_store(store, spec), seen.append, lambda: len(seen) >= 6)
    with store.session() as s:
        r = s.get(m.Run, 1)
        assert r.status == "cancelled" and 0 < r.done < r.total
    rid, summary = run_to_end(resume(store, 1))
    assert rid == 1 and summary["relations"]["above"]["n_prompts"] == 4
    with store.session() as s:
        assert s.get(m.Run, 1).status == "done" and s.query(m.AIEResultRow).count() == 1


def test_ctrl_c_marks_the_run_interrupted_and_exits_130(tmp_path, abs_scenes):
    data = tmp_path / "data"
    with open_store(data) as st:
        run_to_end(repo.add_scenes(st, "gen", abs_scenes))
    proc = mfv(
        "--store",
        str(data),
        "aie",
        "--scenes",
        "dataset:gen",
        "--relations",
        "above",
        "--k",
        "1",
        "--n-prompts",
        "6",
        "--split",
        "a",
        "--model",
        "tiny",
        "--batch-size",
        "1",
        wait=False,
    )
    t0 = time.time()
    while _count(data / "store.sqlite", "SELECT coalesce(max(done), 0) FROM runs") == 0:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.time() - t0 < 120
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "interrupted" in err, err[-2000:]
    with open_store(data) as st, st.session() as s:
        r = s.get(m.Run, 1)
        assert r.status == "interrupted" and r.message == "interrupted" and r.finished is not None
    assert json.loads((data / "runs" / "1" / "run.json").read_text())["status"] == "interrupted"
    r = mfv("--store", str(data), "resume", "1")
    assert r.returncode == 0, r.stderr
    with open_store(data) as st, st.session() as s:
        assert s.get(m.Run, 1).status == "done" and s.query(m.AIEResultRow).count() == 1


def test_the_cli_generates_exports_and_imports_through_the_store(tmp_path):
    data = str(tmp_path / "data")
    r = mfv("--store", data, "generate", "--n", "6", "--canvas", "256", "--split", "x", "--dataset", "gen")
    assert r.returncode == 0, r.stderr
    r = mfv("--store", data, "datasets")
    assert json.loads(r.stdout.splitlines()[0])["n_scenes"] == 6
    assert mfv("--store", data, "export", "dataset", "gen", str(tmp_path / "exp")).returncode == 0
    doc = json.loads((tmp_path / "exp" / "dataset.json").read_text())
    assert len(doc["scenes"]) == 6 and all(s["labels"] for s in doc["scenes"])
    assert all((tmp_path / "exp" / s["image"]).is_file() for s in doc["scenes"])
    # the export opens on another machine: a new store
    other = str(tmp_path / "other")
    r = mfv("--store", other, "import", "dataset", str(tmp_path / "exp"), "--dataset", "copy")
    assert r.returncode == 0, r.stderr
    with open_store(other) as st, open_store(data, read_only=True) as src:
        a = list(repo.iter_scenes(src, "gen"))
        b = list(repo.iter_scenes(st, "copy"))
        assert [(s.id, s.objects, s.relations, s.anchor) for s in a] == [
            (s.id, s.objects, s.relations, s.anchor) for s in b
        ]
    r = mfv("--store", data, "runs")
    assert json.loads(r.stdout)["status"] == "done"
    r = mfv("datasets")
    assert r.returncode == 2 and "needs a store" in r.stderr


def test_kill_9_during_a_large_import_keeps_the_database_and_every_committed_label(tmp_path, abs_scenes):
    data = tmp_path / "data"
    with open_store(data) as st:
        run_to_end(repo.add_scenes(st, "mine", abs_scenes[:3], label_status="suggested"))
        pages = repo.page_scenes(st, dataset="mine")
        labels = [lb for p in pages for lb in repo.get_scene(st, p.id)[1]]
        for lb in labels:
            repo.set_label_status(st, lb.id, "confirmed")
        # a big data set to import: 1500 scenes (sharing the fixture's images)
        many = [s.with_(id=f"{s.id}-{i}") for i in range(42) for s in abs_scenes][:1500]
        run_to_end(repo.add_scenes(st, "big", many, batch=500))
        from mfv_desktop.store.exchange import export_dataset

        export_dataset(st, "big", tmp_path / "big")
    db = data / "store.sqlite"
    proc = mfv("--store", str(data), "import", "dataset", str(tmp_path / "big"), "--dataset", "incoming", wait=False)
    _kill_when(
        proc,
        lambda: (
            _count(db, "SELECT count(*) FROM scenes s JOIN datasets d ON s.dataset_id = d.id WHERE d.name = 'incoming'")
            >= 200
        ),
    )
    assert _count(db, "SELECT count(*) FROM datasets WHERE name = 'incoming'") == 1
    with open_store(data) as st:
        assert st.integrity_check() == "ok"
        for lb in labels:  # every label confirmed before the crash
            assert (lb.subject, lb.relation, lb.object) in {
                (x.subject, x.relation, x.object)
                for p in repo.page_scenes(st, dataset="mine")
                for x in repo.get_scene(st, p.id)[1]
                if x.status == "confirmed"
            }
        n = repo.count_scenes(st, "incoming")
        assert 200 <= n < 1500 and n % 200 == 0  # whole batches only
        for p in repo.page_scenes(st, dataset="incoming", limit=5000):
            scene, lbs = repo.get_scene(st, p.id)
            assert len(lbs) == len(abs_scenes[0].relations) and scene.objects  # no half-written scene
        # importing again finishes the job without duplicates
        from mfv_desktop.store.exchange import import_dataset_export

        res = run_to_end(import_dataset_export(st, tmp_path / "big", "incoming"))
        assert res["skipped"] == n and repo.count_scenes(st, "incoming") == 1500


def test_kill_9_during_aie_leaves_an_interrupted_run_that_resumes_where_it_stopped(tmp_path, abs_scenes):
    data = tmp_path / "data"
    with open_store(data) as st:
        run_to_end(repo.add_scenes(st, "gen", abs_scenes))
    args = [
        "aie",
        "--scenes",
        "dataset:gen",
        "--relations",
        "above,left",
        "--k",
        "1",
        "--n-prompts",
        "8",
        "--split",
        "a",
        "--model",
        "tiny",
        "--batch-size",
        "2",
    ]
    proc = mfv("--store", str(data), *args, wait=False)
    run = data / "runs" / "1"
    # a finished relation's result is a row of the store at once (no file in the run folder)
    _kill_when(
        proc,
        lambda: (
            _count(data / "store.sqlite", "select count(*) from aie_results") == 1
            and (run / "left" / "partial.safetensors").is_file()
        ),
    )
    assert not list((run / "above").glob("aie*")) and not list((run / "above").glob("mean*"))
    with open_store(data) as st:
        assert st.integrity_check() == "ok"
        with st.session() as s:
            r = s.get(m.Run, 1)
            assert r.status == "interrupted" and "interrupted" in r.message
            assert [a.relation for a in s.query(m.AIEResultRow)] == ["above"]
    r = mfv("--store", str(data), "runs")
    assert json.loads(r.stdout)["status"] == "interrupted"
    with open_store(data) as st:
        from mfv_desktop.jobs.stored import resume

        seen = []
        rid, summary = drive(resume(st, 1), seen.append)
        assert rid == 1 and set(summary["relations"]) == {"above", "left"}
        assert not any("above" in p.message for p in seen)  # the finished relation is not redone
        assert not any("left: mean activations" in p.message for p in seen)  # restored from the checkpoint
        left = [p for p in seen if "left: indirect effects" in p.message]
        n = summary["relations"]["left"]["n_prompts"]
        assert left[0].done >= 3 * n + 4  # it started after the checkpointed batch (3n + 2 from scratch)
        with st.session() as s:
            assert s.get(m.Run, 1).status == "done"
            resumed = {r.relation: st.artifacts.get(r.aie_artifact)["aie"] for r in s.query(m.AIEResultRow)}
    # the same as a run that was never interrupted
    straight = tmp_path / "straight"
    with open_store(straight) as st:
        run_to_end(repo.add_scenes(st, "gen", abs_scenes))
    assert mfv("--store", str(straight), *args).returncode == 0
    with open_store(straight) as st, st.session() as s:
        for r in s.query(m.AIEResultRow):
            np.testing.assert_allclose(st.artifacts.get(r.aie_artifact)["aie"], resumed[r.relation], atol=1e-6)


def test_importing_an_image_folder_skips_and_names_what_is_not_an_image(tmp_path):
    from PIL import Image

    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 30), "red").save(src / "a.png")
    Image.new("RGB", (50, 20), "blue").save(src / "sub" / "a.png")  # same name, another folder
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (src / "notes.txt").write_text("not an image at all")
    data = str(tmp_path / "data")
    r = mfv("--store", data, "import", "images", str(src), "--dataset", "pics")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["added"] == 2 and len(res["not_images"]) == 1 and "broken.jpg" in res["not_images"][0]
    with open_store(data) as st:
        assert sorted((p.name, p.width, p.height) for p in repo.page_scenes(st, dataset="pics")) == [
            ("a", 40, 30),
            ("sub/a", 50, 20),
        ]


def test_a_vector_from_another_model_is_refused_naming_both_geometries(tmp_path, tiny):
    import torch

    from mfv_desktop.fv.vector_file import FunctionVector

    g = tiny.geometry
    path = FunctionVector(
        torch.randn(g.d_model), "mine", "above", tiny.model_id, g.d_model, g.n_layers, 1, [(1, 0)]
    ).save(tmp_path / "v.safetensors")
    data = str(tmp_path / "data")
    r = mfv("--store", data, "import", "vector", str(path), "--model", "bundled")
    assert r.returncode == 2
    assert f"made for model {tiny.model_id} (d_model={g.d_model}" in r.stderr and "mfv-bundled" in r.stderr
    r = mfv("--store", data, "import", "vector", str(path), "--model", "tiny")
    assert r.returncode == 0, r.stderr
    r = mfv("--store", data, "vectors")
    row = json.loads(r.stdout)
    assert (row["label"], row["kind"], row["model_id"]) == ("mine", "imported", tiny.model_id)
    r = mfv("--store", data, "export", "vector", str(row["id"]), str(tmp_path / "out"))
    back = FunctionVector.load(r.stdout.strip())
    assert torch.equal(back.vector, FunctionVector.load(path).vector)
    assert json.loads(Path(r.stdout.strip()).with_suffix(".json").read_text())["label"] == "mine"
