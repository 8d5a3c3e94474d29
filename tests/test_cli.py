"""`mfv` end to end on the tiny OpenFlamingo: the whole chain and single commands, as a user runs them."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mfv_desktop.cli import main


def mfv(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mfv_desktop.cli", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )


@pytest.mark.parametrize("model,model_id", [("tiny", "tiny-openflamingo-s0"), ("tiny-qwen3vl", "tiny-qwen3vl-s0")])
def test_run_the_whole_chain_from_the_command_line(tmp_path, model, model_id):
    """The same chain on each model family, nothing of the family's own above the backends."""
    out = tmp_path / "demo"
    r = mfv(
        "run",
        "--model",
        model,
        "--out",
        str(out),
        "--n-extract",
        "16",
        "--n-test",
        "8",
        "--k",
        "2",
        "--n-prompts",
        "4",
        "--top-k",
        "3",
        "--canvas",
        "256",
        "--strengths",
        "1,2",
    )
    assert r.returncode == 0, r.stderr
    assert "%|" in r.stderr  # a progress bar was drawn
    assert "0-shot + FV" in r.stdout and "results in" in r.stdout
    from mfv_desktop.fv.vector_file import FunctionVector

    sweep = json.loads((out / "stages" / "04-sweep.json").read_text())["result"]  # the first relation's
    assert FunctionVector.load(out / "vectors" / "above.safetensors").layer == sweep["best_layer"]
    scenes = (out / "scenes" / "scenes.jsonl").read_text().splitlines()
    assert len(scenes) == 24
    for rel in ("above", "below", "left", "right"):
        assert (out / "aie" / rel / "aie.safetensors").is_file()
        assert (out / "aie" / rel / "mean_activations.safetensors").is_file()
        assert (out / "vectors" / f"{rel}.safetensors").is_file()
        sweep = list(csv.DictReader((out / "sweeps" / rel / "sweep.csv").open()))
        assert [(float(row["strength"]), int(row["layer"])) for row in sweep] == [
            (s, layer) for s in (1.0, 2.0) for layer in range(4)
        ]
    rows = list(csv.DictReader((out / "evaluation" / "evaluation.csv").open()))
    assert {r["condition"].split(" '")[0] for r in rows} == {"0-shot", "1-shot ICL", "2-shot ICL", "0-shot + FV"}
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and int(r["n"]) == 4 for r in rows)
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "done" and run["spec"]["kind"] == "chain"
    aie_meta = json.loads((out / "aie" / "above" / "aie.json").read_text())
    prov = aie_meta["provenance"]
    assert prov["model_id"] == model_id and prov["dtype"] == "float32"
    assert FunctionVector.load(out / "vectors" / "above.safetensors").provenance["family"] == prov["family"]
    assert len(aie_meta["clean_tasks_hash"]) == 64


def test_single_commands(tmp_path, capsys):
    scenes = tmp_path / "scenes"
    assert main(["-q", "generate", str(scenes), "--n", "10", "--canvas", "256", "--split", "x"]) == 0
    assert main(["-q", "generate", str(scenes), "--n", "6", "--canvas", "256", "--split", "y", "--diagonal"]) == 0
    lines = [json.loads(s) for s in (scenes / "scenes.jsonl").read_text().splitlines()]
    assert {s["split"] for s in lines} == {"x", "y"}  # a second split does not replace the first
    assert (
        main(
            [
                "-q",
                "tasks",
                str(scenes),
                str(tmp_path / "t.json"),
                "--split",
                "y",
                "--k",
                "1",
                "--relations",
                "above_left,below_right",
            ]
        )
        == 0
    )
    t = json.loads((tmp_path / "t.json").read_text())
    assert {task["relation"] for task in t["tasks"]} == {"above_left", "below_right"}
    capsys.readouterr()
    assert main(["info", "--model", "tiny", "--check-names", "apple,cup"]) == 0
    out = capsys.readouterr().out
    assert (
        out.splitlines()[0] == "openflamingo: 4 layers · 4 heads · d_head 16 · d_model 64 · vocabulary 49 · "
        "4 cross-attention layers"
    )
    assert '"family": "openflamingo"' in out and "all 2 names are single tokens" in out.splitlines()[-1]


def test_errors_are_named_and_exit_nonzero(tmp_path, capsys):
    assert main(["-q", "aie", "--scenes", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no scene set at" in err and "mfv generate" in err
    assert main(["info", "--model", str(tmp_path / "nomodel")]) == 2
    err = capsys.readouterr().err
    assert "neither 'bundled', 'tiny', 'tiny-qwen3vl' nor an existing model folder" in err
    assert main(["info", "--model", "tiny", "--check-names", "apple,zebracorn"]) == 2
    assert "zebracorn" in capsys.readouterr().err


def test_a_failed_job_records_its_error(tmp_path):
    from mfv_desktop.jobs import ExtractSpec, execute, run_extract
    from mfv_desktop.progress import run_to_end

    with pytest.raises(FileNotFoundError):
        run_to_end(
            execute(
                ExtractSpec(aie=str(tmp_path / "none"), out=str(tmp_path / "v.safetensors"), model="tiny"),
                run_extract,
                tmp_path,
            )
        )
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "failed" and "run `mfv aie` first" in run["error"]


def test_a_cancelled_job_stops_at_a_yield(tmp_path, scene_folder):
    from mfv_desktop.jobs import AIESpec, Cancelled, execute, run_aie
    from mfv_desktop.progress import drive

    seen = []
    spec = AIESpec(
        scenes=str(scene_folder),
        out=str(tmp_path),
        relations=("above",),
        k=1,
        n_prompts=6,
        split="a",
        batch_size=1,
        model="tiny",
    )
    with pytest.raises(Cancelled):
        drive(execute(spec, run_aie, Path(tmp_path)), seen.append, lambda: len(seen) >= 3)
    assert len(seen) == 3
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "cancelled"
    assert not (tmp_path / "above" / "aie.safetensors").exists()


def test_an_interrupted_aie_job_resumes_after_its_finished_relations(tmp_path, scene_folder):
    from mfv_desktop.jobs import AIESpec, Cancelled, execute, run_aie
    from mfv_desktop.progress import drive

    spec = AIESpec(
        scenes=str(scene_folder),
        out=str(tmp_path),
        relations=("above", "left"),
        k=1,
        n_prompts=4,
        split="a",
        batch_size=2,
        model="tiny",
    )
    with pytest.raises(Cancelled):  # cancelled while computing "left"
        drive(execute(spec, run_aie, tmp_path), should_cancel=lambda: (tmp_path / "above" / "aie.json").exists())
    first = (tmp_path / "above" / "aie.safetensors").read_bytes()
    seen: list = []
    result = drive(execute(spec, run_aie, tmp_path), seen.append)
    assert not any("above" in p.message for p in seen)  # "above" was not computed again
    assert any("left" in p.message for p in seen)
    assert (tmp_path / "above" / "aie.safetensors").read_bytes() == first
    assert set(result["relations"]) == {"above", "left"}
    assert result["relations"]["above"]["n_prompts"] == 4
    # another model (or other prompts) does not reuse it
    seen.clear()
    drive(execute(replace(spec, model="tiny:1"), run_aie, tmp_path), seen.append)
    assert any("above" in p.message for p in seen)


def test_aie_is_fast_by_default_equals_the_reference_and_the_preview_compares_with_it(tmp_path, scene_folder, capsys):
    from safetensors.numpy import load_file

    common = [
        "--scenes",
        str(scene_folder),
        "--relations",
        "above",
        "--k",
        "2",
        "--n-prompts",
        "3",
        "--split",
        "a",
        "--model",
        "tiny",
    ]
    assert main(["-q", "aie", "--out", str(tmp_path / "fast"), *common]) == 0
    assert main(["-q", "aie", "--out", str(tmp_path / "ref"), "--method", "reference", *common]) == 0
    fast = json.loads((tmp_path / "fast" / "above" / "aie.json").read_text())
    assert fast["method"] == "fast"
    a, b = (load_file(str(tmp_path / m / "above" / "aie.safetensors"))["aie"] for m in ("fast", "ref"))
    assert abs(a - b).max() < 1e-6
    capsys.readouterr()
    assert main(["-q", "preview", "--out", str(tmp_path / "pv"), "--compare", str(tmp_path / "ref"), *common]) == 0
    out = json.loads(capsys.readouterr().out)
    assert -1 <= out["relations"]["above"]["rank_correlation"] <= 1
    est = load_file(str(tmp_path / "pv" / "above" / "preview.safetensors"))["aie_estimate"]
    assert est.shape == a.shape
    assert not (tmp_path / "pv" / "above" / "aie.json").exists()  # a preview is not an AIE result


def test_downloading_openflamingo_4b_offline_says_what_to_do(tmp_path, capsys, monkeypatch):
    from mfv_desktop.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["-q", "download-4b", str(tmp_path / "of4b")]) == 2
    assert "no network: copy the files into the folder instead" in capsys.readouterr().err


QWEN3VL_4B_FILES = [
    ".gitattributes",
    "README.md",
    "chat_template.json",
    "config.json",
    "generation_config.json",
    "merges.txt",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "video_preprocessor_config.json",
    "vocab.json",
    "assets/demo.json",
]
QWEN3VL_2B_FILES = [
    ".gitattributes",
    "README.md",
    "config.json",
    "merges.txt",
    "model.safetensors",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
]


@pytest.mark.parametrize(
    "name, listed", [("qwen3-vl-4b-instruct", QWEN3VL_4B_FILES), ("qwen3-vl-2b-instruct", QWEN3VL_2B_FILES)]
)
def test_download_a_qwen3vl_model_fetches_its_files_and_checks_the_folder(
    tmp_path, capsys, fake_hub, add_family, name, listed
):
    from mfv_desktop.backends.download import DOWNLOADS

    model = DOWNLOADS[name]
    add_family(model.family, "qwen3_vl")  # whichever backend is registered, the check asks the registry
    repo = model.sources[0].repo
    hub = fake_hub({repo: listed}, {"config.json": '{"model_type": "qwen3_vl"}'})
    folder = tmp_path / "qwen"
    assert main(["-q", "download", name, str(folder)]) == 0
    result = json.loads(capsys.readouterr().out)
    wanted = {f for f in listed if "/" not in f and f not in (".gitattributes", "README.md")}
    assert {f for _, f in hub.fetched} == wanted and {r for r, _ in hub.fetched} == {repo}
    assert {p.name for p in folder.iterdir()} == wanted  # the Hugging Face layout, at the folder's top
    assert result["family"] == model.family == "qwen3vl" and result["folder"] == str(folder)
    assert sorted(result["downloaded"]) == sorted(f"{repo}/{f}" for f in wanted)


def test_download_4b_is_openflamingo_4b_laid_out_as_its_backend_reads_it(tmp_path, capsys, fake_hub):
    from mfv_desktop.backends.download import DOWNLOADS

    ckpt, lm, clip = (s.repo for s in DOWNLOADS["openflamingo-4b"].sources)
    hub = fake_hub(
        {
            ckpt: ["README.md", "checkpoint.pt"],
            lm: [
                "README.md",
                "config.json",
                "model.safetensors",
                "pytorch_model.bin",
                "tf_model.h5",
                "tokenizer.json",
                "special_tokens_map.json",
                "onnx/model.onnx",
            ],
            clip: ["README.md", "open_clip_config.json", "open_clip_model.safetensors", "open_clip_pytorch_model.bin"],
        }
    )
    folder = tmp_path / "of4b"
    assert main(["-q", "download-4b", str(folder)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert hub.fetched == [
        (ckpt, "checkpoint.pt"),
        *((lm, f) for f in ("config.json", "model.safetensors", "tokenizer.json", "special_tokens_map.json")),
        (clip, "open_clip_pytorch_model.bin"),
    ]  # one copy of the weights, no other frameworks'
    assert (folder / "RedPajama-INCITE-Instruct-3B-v1" / "model.safetensors").is_file()
    assert (folder / "checkpoint.pt").is_file() and (folder / "open_clip_pytorch_model.bin").is_file()
    assert result["family"] == "openflamingo" and "RedPajama-INCITE-Instruct-3B-v1" in result["files"]["language model"]


@pytest.mark.parametrize("name", ["openflamingo-4b", "qwen3-vl-2b-instruct", "qwen3-vl-4b-instruct"])
def test_downloading_without_a_network_names_the_files_to_copy_in(tmp_path, capsys, fake_hub, name):
    from huggingface_hub.errors import OfflineModeIsEnabled

    from mfv_desktop.backends.download import DOWNLOADS

    hub = fake_hub({}, fail=OfflineModeIsEnabled("offline mode is enabled"))
    assert main(["-q", "download", name, str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "mfv download: error: no network: copy the files into the folder instead" in err
    assert all(s.repo in err and s.patterns[0] in err for s in DOWNLOADS[name].sources), err
    assert hub.fetched == []


def test_a_repository_without_a_needed_file_is_named_before_anything_is_fetched(tmp_path, capsys, fake_hub):
    files = [f for f in QWEN3VL_2B_FILES if f != "preprocessor_config.json"]
    hub = fake_hub({"Qwen/Qwen3-VL-2B-Instruct": files})
    assert main(["-q", "download", "qwen3-vl-2b-instruct", str(tmp_path / "m")]) == 2
    assert "Qwen/Qwen3-VL-2B-Instruct has no file 'preprocessor_config.json'" in capsys.readouterr().err
    assert hub.fetched == []


def test_info_files_only_names_the_family_or_what_each_family_needs(tmp_path, capsys, add_family):
    from mfv_desktop.backends.registry import FAMILIES

    add_family("other", "other_vl")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "other_vl"}')
    (folder / "model.safetensors").write_text("")
    assert main(["info", "--model", str(folder), "--files-only"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "other: the files of other-from-m are in place (not loaded)"
    assert json.loads(out.partition("\n")[2])["family"] == "other"

    (folder / "config.json").write_text('{"model_type": "llama"}')  # a model, of no family this app knows
    assert main(["info", "--model", str(folder), "--files-only"]) == 2
    err = capsys.readouterr().err
    assert "it holds no model this app knows" in err and all(f.hint in err for f in FAMILIES.values())
