"""Every run records what it measured, prompt by prompt (jobs/prompts.py, the sinks): the AIE's clean
and corrupted prompts with each head's effect on each, in a store run, a folder run taken in later,
and a run cancelled and resumed; the `mfv prompts` listing."""

from __future__ import annotations

import types

import numpy as np
import pytest

from mfv_desktop.progress import drive, run_to_end
from mfv_desktop.store import models as m
from mfv_desktop.store import scenes as repo
from mfv_desktop.store.prompts import group_prompts, prompt_groups, read_prompt_effects, read_task_set


def _aie_spec(**kw):
    from mfv_desktop.jobs import AIESpec

    base = dict(scenes="dataset:gen", relations=("above",), k=1, n_prompts=4, split="a", batch_size=2, model="tiny")
    return AIESpec(**{**base, **kw})


def _check_aie_records(store, run_id: int, n: int) -> np.ndarray:
    """The run's AIE result has clean and corrupted groups and per-prompt effects that average to its
    matrix; returns the effects."""
    from mfv_desktop.store.results import read_aie_result

    with store.session() as s:
        (row,) = s.query(m.AIEResultRow).filter_by(run_id=run_id).all()
        aie_id, clean_hash, corrupted_hash = row.id, row.clean_tasks_hash, row.corrupted_tasks_hash
    res = read_aie_result(store, aie_id)
    groups = {g.condition: g for g in prompt_groups(store, run_id)}
    assert set(groups) == {"clean", "corrupted"}
    clean, corrupted = groups["clean"], groups["corrupted"]
    assert clean.task_set_hash == clean_hash and corrupted.task_set_hash == corrupted_hash
    # the task sets keep their tasks: the viewer can show them after a restart
    assert read_task_set(store, clean_hash) is not None and read_task_set(store, corrupted_hash) is not None
    assert clean.n_correct / clean.n == pytest.approx(res.meta["clean_accuracy"], abs=0)
    assert corrupted.n == res.meta["n_prompts"] == n
    _, prompts = group_prompts(store, corrupted.id)
    assert all(p.answer_prob is not None and 0 <= p.answer_prob <= 1 for p in prompts)
    assert np.mean([p.answer_prob for p in prompts]) == pytest.approx(res.meta["base_prob"], abs=1e-6)
    eff = read_prompt_effects(store, aie_id)
    assert eff is not None and eff.task_set_hash == corrupted_hash
    assert eff.effects.shape == (n, *res.aie.shape) and eff.effects.dtype == np.float32
    assert eff.indices.tolist() == [p.index for p in prompts]
    np.testing.assert_allclose(eff.effects.mean(0), res.aie, atol=1e-5)
    return eff.effects


@pytest.mark.parametrize("method", ["reference", "fast"])
def test_an_aie_run_records_its_prompts_and_each_heads_effect_on_each(store, abs_scenes, method):
    from mfv_desktop.jobs.stored import run_in_store

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    rid, summary = run_to_end(run_in_store(store, _aie_spec(method=method, matched_only=False)))
    _check_aie_records(store, rid, summary["relations"]["above"]["n_prompts"])


def test_fast_and_reference_agree_prompt_by_prompt(tiny, scenes, scene_folder):
    import torch

    from mfv_desktop.fv import average_indirect_effect
    from mfv_desktop.fv.fast import fast_average_indirect_effect
    from mfv_desktop.tasks import TaskSpec, build_task_set

    spec = TaskSpec(relations=("above", "left"), k=2, split="a", kind="corrupted", max_per_relation=3)
    corrupted = build_task_set(scenes, scene_folder, spec).tasks
    g = tiny.geometry
    mean = torch.randn(g.n_layers, g.n_heads, g.d_head, generator=torch.Generator().manual_seed(0)) * 20
    ref = run_to_end(average_indirect_effect(tiny, corrupted, mean, batch_size=4))
    fast = run_to_end(fast_average_indirect_effect(tiny, corrupted, mean, batch_size=3, max_columns=5))
    assert ref.prompt_effects.shape == (len(corrupted), g.n_layers, g.n_heads)
    assert np.abs(ref.prompt_effects).max() > 1e-3  # effects worth comparing
    np.testing.assert_allclose(fast.prompt_effects, ref.prompt_effects, atol=1e-5)
    np.testing.assert_allclose(ref.prompt_effects.mean(0), ref.aie, atol=1e-5)
    np.testing.assert_allclose(fast.prompt_effects.mean(0), fast.aie, atol=1e-5)
    np.testing.assert_array_equal(fast.predicted, ref.predicted)
    np.testing.assert_array_equal(fast.correct, ref.correct)
    np.testing.assert_allclose(fast.base_probs, ref.base_probs, atol=1e-6)


def test_a_cancelled_aie_resumes_with_every_prompts_effects(store, abs_scenes, monkeypatch):
    from mfv_desktop.jobs import Cancelled, mediation
    from mfv_desktop.jobs.stored import resume, run_in_store

    monkeypatch.setattr(mediation, "CHECKPOINT_EVERY_S", 0.0)  # every batch is checkpointed
    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    spec = _aie_spec(batch_size=1, matched_only=False, n_prompts=5)
    seen: list = []
    stop = lambda: sum("indirect effects" in p.message for p in seen) >= 3  # noqa: E731
    with pytest.raises(Cancelled):
        drive(run_in_store(store, spec), seen.append, stop)
    partial = store.runs_dir / "1" / "above" / "partial.safetensors"
    from safetensors.numpy import load_file

    kept = load_file(str(partial))
    assert 0 < len(kept["prompt_effects"]) < 5  # a part of the prompts, kept with the sums
    resumed: list = []
    rid, summary = drive(resume(store, 1), resumed.append)
    first = next(p for p in resumed if "indirect effects" in p.message)
    assert first.done > 1, "the resumed run started the indirect effects over"
    effects = _check_aie_records(store, rid, 5)
    # the same numbers as a run never interrupted
    rid2, _ = run_to_end(run_in_store(store, spec))
    np.testing.assert_array_equal(read_prompt_effects(store, _aie_id(store, rid2)).effects, effects)


def _aie_id(store, run_id: int) -> int:
    with store.session() as s:
        return s.query(m.AIEResultRow).filter_by(run_id=run_id).one().id


def test_a_folder_run_taken_into_a_store_brings_its_prompts(store, scene_folder, tmp_path):
    from mfv_desktop.jobs import execute, run_aie
    from mfv_desktop.jobs.stored import ingest

    out = tmp_path / "aie"
    run_to_end(execute(_aie_spec(scenes=str(scene_folder), out=str(out), matched_only=False), run_aie, out))
    assert (out / "above" / "prompt_effects.safetensors").is_file() and len(list((out / "prompts").glob("*.json"))) == 2
    with store.session() as s:
        run = m.Run(kind="chain", spec={}, status="done")
        s.add(run)
        s.flush()
        rid = run.id
    ingest(store, rid, tmp_path, types.SimpleNamespace(kind="chain", split=None))
    _check_aie_records(store, rid, 4)


def test_mfv_prompts_lists_what_a_run_measured(store, abs_scenes, capsys):
    from mfv_desktop import cli
    from mfv_desktop.jobs.stored import run_in_store

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    rid, _ = run_to_end(run_in_store(store, _aie_spec(matched_only=False)))
    store.close()
    assert cli.main(["-q", "--store", str(store.data_dir), "prompts", str(rid), "--condition", "corrupted"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("above · corrupted: ") and len(out) == 5
    rows = [line.split() for line in out[1:]]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3] and all(r[3] in "✓✗" for r in rows)
    assert cli.main(["-q", "--store", str(store.data_dir), "prompts", str(rid), "--wrong"]) == 0
    wrong = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    assert all(line.split()[3] == "✗" for line in wrong)


@pytest.fixture
def tiny_vector(tiny, tmp_path) -> str:
    """A random 'above' vector for the tiny model, large enough to change its answers."""
    import torch

    from mfv_desktop.fv.vector_file import FunctionVector

    g = tiny.geometry
    v = torch.randn(g.d_model, generator=torch.Generator().manual_seed(1))
    fv = FunctionVector(v * 8 / v.norm(), "rand", "above", tiny.model_id, g.d_model, g.n_layers, 1, [(0, 0)])
    return str(fv.save(tmp_path / "rand.safetensors"))


@pytest.mark.parametrize("method", ["reference", "fast"])
def test_a_sweep_records_a_group_per_point_whose_accuracy_is_the_curves(
    store, abs_scenes, tiny_folder, tiny_vector, method
):
    from mfv_desktop.jobs import SweepSpec
    from mfv_desktop.jobs.stored import run_in_store

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    spec = SweepSpec(
        vector=tiny_vector,
        scenes="dataset:gen",
        split="a",
        n_prompts=5,
        strengths=(1.0, 2.5),
        layers=(0, 2),
        ks=(1,),
        method=method,
        model=str(tiny_folder),
    )
    rid, summary = run_to_end(run_in_store(store, spec))
    groups = {g.condition: g for g in prompt_groups(store, rid)}
    assert list(groups) == ["0-shot", "L0 ×1", "L2 ×1", "L0 ×2.5", "L2 ×2.5", "1-shot ICL"]
    assert groups["0-shot"].accuracy == summary["baseline"]["accuracy"] == summary["baselines"]["0-shot"]
    assert groups["1-shot ICL"].accuracy == summary["baselines"]["1-shot ICL"]
    for i, strength in enumerate((1.0, 2.5)):
        for j, layer in enumerate((0, 2)):
            g = groups[f"L{layer} ×{strength:g}"]
            assert g.accuracy == summary["accuracy"][i][j] and g.n == 5
            assert (g.detail["layer"], g.detail["strength"], g.detail["vector"]) == (layer, strength, tiny_vector)
    _, prompts = group_prompts(store, groups["L2 ×2.5"].id)
    assert len(prompts) == 5 and all(p.predicted and p.expected for p in prompts)
    assert sum(p.correct for p in prompts) == groups["L2 ×2.5"].n_correct


def test_an_evaluation_records_a_group_per_row(store, abs_scenes, tiny_folder, tiny_vector):
    from mfv_desktop.jobs import EvaluateSpec
    from mfv_desktop.jobs.stored import run_in_store

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    spec = EvaluateSpec(
        scenes="dataset:gen",
        split="b",
        ks=(0, 1),
        vectors=(tiny_vector,),
        n_prompts=3,
        relations=("above",),
        model=str(tiny_folder),
    )
    rid, summary = run_to_end(run_in_store(store, spec))
    groups = {g.condition: g for g in prompt_groups(store, rid)}
    assert [r["condition"] for r in summary["rows"]] == list(groups)
    for row in summary["rows"]:
        g = groups[row["condition"]]
        assert g.relation == row["relation"] and g.n == row["n"] and round(g.accuracy, 4) == row["accuracy"]
    fv_group = groups["0-shot + FV 'rand' @L1"]
    assert fv_group.detail["layer"] == 1 and fv_group.detail["strength"] == 1.0 and fv_group.detail["vector_sha256"]


def _query(abs_scenes, scene_folder, i: int = 0):
    from mfv_desktop.tasks import TaskSpec, build_task_set

    spec = TaskSpec(relations=("above",), kind="zeroshot", split="a")
    return build_task_set(abs_scenes, scene_folder, spec).tasks[i].query


@pytest.mark.parametrize("known", [True, False])
def test_apply_records_its_image_and_says_whether_each_answer_is_right(
    store, abs_scenes, scene_folder, tiny_folder, tiny_vector, known
):
    from mfv_desktop.jobs import ApplySpec
    from mfv_desktop.jobs.stored import run_in_store

    q = _query(abs_scenes, scene_folder)
    spec = ApplySpec(
        image=q.image,
        anchor=q.anchor,
        vectors=(tiny_vector,),
        strength=4.0,
        expected=q.answer if known else None,
        model=str(tiny_folder),
    )
    rid, res = run_to_end(run_in_store(store, spec))
    groups = {g.condition: g for g in prompt_groups(store, rid)}
    assert list(groups) == ["0-shot", "with vectors"]
    assert res["expected"] == (q.answer if known else None)
    for name, cond in (("without", "0-shot"), ("with", "with vectors")):
        g = groups[cond]
        _, (p,) = group_prompts(store, g.id)
        assert p.predicted == res[name] and p.task.query.image == q.image and p.task.query.anchor == q.anchor
        assert g.detail["expected_known"] is known
        if known:
            assert p.expected == q.answer and res["correct"][name] == p.correct == (res[name] == q.answer)
            assert p.answer_prob is not None
        else:
            assert p.expected == "" and p.correct is False and res["correct"][name] is None


def test_an_analogy_records_its_target_under_each_condition(store, abs_scenes, scene_folder, tiny_folder, tiny_vector):
    from mfv_desktop.jobs import AnalogySpec
    from mfv_desktop.jobs.stored import run_in_store

    src, tgt = _query(abs_scenes, scene_folder, 0), _query(abs_scenes, scene_folder, 1)
    spec = AnalogySpec(
        vectors=(tiny_vector,),
        source_image=src.image,
        source_anchor=src.anchor,
        source_answer=src.answer,
        target_image=tgt.image,
        target_anchor=tgt.anchor,
        target_answer=tgt.answer,
        model=str(tiny_folder),
    )
    rid, res = run_to_end(run_in_store(store, spec))
    groups = {g.condition: g for g in prompt_groups(store, rid)}
    assert set(groups) == {"0-shot", "1-shot ICL", "composite"} and res["expected"] == tgt.answer
    for cond in groups:
        _, (p,) = group_prompts(store, groups[cond].id)
        assert p.expected == tgt.answer and p.predicted == res[cond]["answer"].strip()
        assert p.correct == res[cond]["correct"] == (p.predicted == tgt.answer)
    _, (icl,) = group_prompts(store, groups["1-shot ICL"].id)
    assert icl.task.demos[0].anchor == src.anchor and icl.task.demos[0].answer == src.answer


def test_stages_that_measure_the_same_condition_keep_both_groups(store, scenes, scene_folder, tiny, tmp_path):
    from mfv_desktop.jobs.prompts import answers, ingest_groups, write_group
    from mfv_desktop.tasks import TaskSpec, build_task_set

    ts = build_task_set(scenes, scene_folder, TaskSpec(relations=("above",), kind="zeroshot", split="a"))
    got = answers(["x"] * len(ts.tasks), [False] * len(ts.tasks))
    write_group(tmp_path / "sweeps" / "above", "above", "0-shot", ts, tiny.template, got)
    write_group(tmp_path / "evaluation", "above", "0-shot", ts, tiny.template, got[:2])
    write_group(tmp_path / "aie", "above", "clean", ts, tiny.template, got[:3])
    with store.session() as s:
        run = m.Run(kind="chain", spec={}, status="done")
        s.add(run)
        s.flush()
        rid = run.id
    assert ingest_groups(store, rid, tmp_path) == 3
    groups = {g.condition: g for g in prompt_groups(store, rid)}
    assert set(groups) == {"sweeps/above: 0-shot", "evaluation: 0-shot", "clean"}
    assert groups["evaluation: 0-shot"].n == 2 and groups["clean"].detail["stage"] == "aie"


def test_an_analogy_table_records_a_group_per_row(store, abs_scenes, tiny_folder, tiny_vector):
    from mfv_desktop.jobs import AnalogySpec
    from mfv_desktop.jobs.stored import run_in_store

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    spec = AnalogySpec(
        vectors=(tiny_vector,),
        scenes="dataset:gen",
        split="a",
        relations=("above", "left"),
        n_prompts=6,
        ks=(1,),
        model=str(tiny_folder),
    )
    rid, res = run_to_end(run_in_store(store, spec))
    groups = {(g.relation, g.condition): g for g in prompt_groups(store, rid)}
    assert len(groups) == len(res["rows"]) == 6
    for row in res["rows"]:
        g = groups[(row["relation"], row["condition"])]
        assert g.n == row["n"] and round(g.accuracy, 4) == row["accuracy"]
