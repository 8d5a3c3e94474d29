"""The authors' AIE convention: the indirect effect averaged over the corrupted prompts whose clean prompt
the model answers correctly. Clean and corrupted prompts pair one to one; the choice is a setting of
every AIE job (CLI, GUI), resumes exactly, and is recorded with every result."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from mfv_desktop.progress import run_to_end
from mfv_desktop.tasks import TaskError, TaskSpec, build_task_set, check_paired, pair_key


@pytest.mark.parametrize("corruption", ["paper", "todd"])
def test_clean_and_corrupted_prompts_pair_one_to_one_by_query(scenes, scene_folder, corruption):
    # a scene without a 'left' target cannot serve 'left': both sets skip it alike
    holed = [
        s.with_(relations=tuple(t for t in s.relations if t.relation != "left")) if i == 5 else s
        for i, s in enumerate(scenes)
    ]
    for relations, n in ((("above", "left"), None), (("left",), 5), (("below", "right", "above"), 3)):
        base = dict(relations=relations, k=3, split="a", seed=7, max_per_relation=n)
        clean = build_task_set(holed, scene_folder, TaskSpec(**base)).tasks
        corrupted = build_task_set(holed, scene_folder, TaskSpec(kind="corrupted", corruption=corruption, **base)).tasks
        check_paired(clean, corrupted)
        assert len({pair_key(t) for t in clean}) == len(clean)  # one to one
        for c, x in zip(clean, corrupted):
            assert c.query == x.query and sorted(d.image for d in c.demos) == sorted(d.image for d in x.demos)
            assert [d.answer for d in c.demos] != [d.answer for d in x.demos]  # relabelled
    assert scenes[5].id not in {
        t.query.scene_id for t in build_task_set(holed, scene_folder, TaskSpec(relations=("left",), split="a")).tasks
    }
    with pytest.raises(TaskError, match="corrupted prompt 0 .* is not clean prompt 0"):
        check_paired(clean, corrupted[::-1])
    with pytest.raises(TaskError, match="9 clean prompts but 2 corrupted"):
        check_paired(clean, corrupted[:2])


def test_matched_prompts_are_the_corrupted_twins_of_correct_clean_prompts(scenes, scene_folder):
    from mfv_desktop.fv import matched_prompts

    base = dict(relations=("above",), k=2, split="a", max_per_relation=6)
    clean = build_task_set(scenes, scene_folder, TaskSpec(**base)).tasks
    corrupted = build_task_set(scenes, scene_folder, TaskSpec(kind="corrupted", **base)).tasks
    right = np.array([True, False, False, True, True, False])
    m = matched_prompts(clean, corrupted, right)
    assert m.prompts == [corrupted[0], corrupted[3], corrupted[4]]
    assert (m.matched_only, m.n_matched, m.n_corrupted, m.notes) == (True, 3, 6, [])
    a = matched_prompts(clean, corrupted, right, matched_only=False)
    assert a.prompts == corrupted and (a.matched_only, a.n_matched, a.n_corrupted) == (False, 3, 6)
    none = matched_prompts(clean, corrupted, np.zeros(6, bool))
    assert none.prompts == corrupted and none.n_matched == 0
    assert none.notes == ["no clean prompt was answered correctly (0 of 6): the AIE is over all 6 corrupted prompts"]
    with pytest.raises(TaskError):
        matched_prompts(clean, corrupted[1:] + corrupted[:1], right)


def test_a_matched_only_aie_resumes_from_its_checkpoint_exactly(diagonal_folder, tmp_path):
    from safetensors import safe_open

    from mfv_desktop.jobs import AIESpec, Cancelled, execute, run_aie
    from mfv_desktop.jobs.science import load_arrays
    from mfv_desktop.progress import drive

    spec = AIESpec(
        scenes=str(diagonal_folder),
        out=str(tmp_path / "r"),
        relations=("above_left",),
        k=2,
        n_prompts=8,
        split="d",
        batch_size=1,
        model="bundled",
    )
    partial = tmp_path / "r" / "above_left" / "partial.safetensors"
    with pytest.raises(Cancelled):  # cancelled right after the first matched prompt's checkpoint
        drive(execute(spec, run_aie, tmp_path / "r"), should_cancel=partial.is_file)
    with safe_open(str(partial), framework="numpy") as f:
        saved = json.loads(f.metadata()["meta"])
    assert saved["n_prompts"] == 1 and saved["key"]["matched_only"] is True
    seen: list = []
    resumed = drive(execute(spec, run_aie, tmp_path / "r"), seen.append)["relations"]["above_left"]
    assert not any("mean activations" in p.message for p in seen)  # the mean and clean answers were restored
    straight = drive(execute(replace(spec, out=str(tmp_path / "s")), run_aie, tmp_path / "s"))
    straight = straight["relations"]["above_left"]
    assert 1 < resumed["n_prompts"] == resumed["n_matched"] == straight["n_matched"] < 8
    np.testing.assert_allclose(
        load_arrays(tmp_path / "r" / "above_left" / "aie.safetensors")["aie"],
        load_arrays(tmp_path / "s" / "above_left" / "aie.safetensors")["aie"],
        atol=1e-7,
    )
    # a checkpoint of the other convention is not reused
    with pytest.raises(Cancelled):
        drive(
            execute(replace(spec, out=str(tmp_path / "c")), run_aie, tmp_path / "c"),
            should_cancel=lambda: (tmp_path / "c" / "above_left" / "partial.safetensors").is_file(),
        )
    seen.clear()
    out = drive(
        execute(replace(spec, out=str(tmp_path / "c"), matched_only=False), run_aie, tmp_path / "c"), seen.append
    )
    assert any("mean activations" in p.message for p in seen) and out["relations"]["above_left"]["n_prompts"] == 8


def test_the_flag_pair_sets_the_choice_of_aie_preview_and_report():
    from mfv_desktop.cli import _spec_from_args, build_parser

    p = build_parser()
    for cmd in (["aie", "--scenes", "s"], ["preview", "--scenes", "s"], ["report"]):
        assert _spec_from_args(p.parse_args(cmd)).matched_only is True
        assert _spec_from_args(p.parse_args([*cmd, "--matched-only"])).matched_only is True
        assert _spec_from_args(p.parse_args([*cmd, "--all-corrupted"])).matched_only is False
        with pytest.raises(SystemExit):
            p.parse_args([*cmd, "--matched-only", "--all-corrupted"])
    spec = _spec_from_args(p.parse_args(["aie", "--scenes", "s", "--all-prompts", "--all-corrupted"]))
    assert (spec.only_correct, spec.matched_only) == (False, False)  # two different things


def test_the_store_and_mfv_results_record_the_choice(store, diagonal_folder, capsys, tmp_path):
    from mfv_desktop.cli import main
    from mfv_desktop.jobs import AIESpec, PreviewSpec, run_preview
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.store import models as m

    spec = AIESpec(scenes=str(diagonal_folder), relations=("above_left",), k=2, n_prompts=8, split="d", model="bundled")
    ids = [run_to_end(run_in_store(store, replace(spec, matched_only=mo)))[0] for mo in (True, False)]
    with store.session() as s:
        rows = {r.run_id: r for r in s.query(m.AIEResultRow)}
        mine, every = rows[ids[0]], rows[ids[1]]
        assert mine.provenance["matched_only"] is True and every.provenance["matched_only"] is False
        n = mine.provenance["n_matched"]
        assert 0 < n == mine.n_prompts < every.n_prompts == every.provenance["n_corrupted"] == 8
        assert store.artifacts.get(mine.aie_artifact) is not None
    store.close()
    assert main(["-q", "--store", str(store.data_dir), "results"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["matched_only"], r["averaged_over"]) for r in listed] == [
        (True, f"{n} of 8 matched prompts"),
        (False, "all 8 corrupted prompts"),
    ]
    # the preview averages over the same prompts and records it too
    out = tmp_path / "preview"
    info = run_to_end(
        run_preview(
            PreviewSpec(
                **{k: getattr(spec, k) for k in ("scenes", "relations", "k", "n_prompts", "split", "model")},
                out=str(out),
            )
        )
    )["relations"]["above_left"]
    assert (info["matched_only"], info["n_matched"], info["n_prompts"]) == (True, n, n)


def test_listings_say_what_an_aie_was_averaged_over():
    from mfv_desktop.jobs.mediation import averaging_text

    assert (
        averaging_text({"matched_only": True, "n_matched": 3, "n_corrupted": 8, "n_prompts": 3})
        == "3 of 8 matched prompts"
    )
    assert (
        averaging_text({"matched_only": True, "n_matched": 0, "n_corrupted": 8, "n_prompts": 8})
        == "all 8 corrupted prompts (none matched)"
    )
    assert (
        averaging_text({"matched_only": False, "n_matched": 3, "n_corrupted": 8, "n_prompts": 8})
        == "all 8 corrupted prompts"
    )
    assert averaging_text({"n_prompts": 24}) == "all 24 corrupted prompts"  # recorded before the choice existed


def test_a_map_caption_says_what_was_measured():
    from mfv_desktop.jobs.mediation import measured_text

    info = {
        "matched_only": True,
        "n_matched": 37,
        "n_corrupted": 50,
        "n_prompts": 37,
        "mean_over": 37,
        "only_correct": True,
        "clean_accuracy": 0.74,
        "base_prob": 0.0312,
    }
    assert measured_text(info) == (
        "averaged over 37 of 50 corrupted prompts whose clean prompt was answered; "
        "mean activations over 37 answered clean prompts; clean accuracy 74% (37 of 50); "
        "corrupted baseline P(answer) 0.031"
    )
    none = {**info, "n_matched": 0, "n_prompts": 50, "mean_over": 50, "only_correct": False, "clean_accuracy": 0.0}
    assert measured_text(none).startswith("averaged over all 50 corrupted prompts (no clean prompt was answered")
    assert "mean activations over 50 clean prompts (all of them)" in measured_text(none)
    assert measured_text({"n_prompts": 24}) == "averaged over all 24 corrupted prompts"  # an old record
