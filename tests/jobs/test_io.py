"""Jobs read from the store and write into it (jobs/io.py, store/results.py): a vector built from a
stored AIE result goes to the store and into an apply job without a run folder, with the same answer
as the file-based path; an evaluation row names the store vector it measured; references parse in
one place."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mfv_desktop.progress import run_to_end
from mfv_desktop.store import models as m
from mfv_desktop.store import scenes as repo

AIE_KW = dict(relations=("above",), k=1, n_prompts=4, split="a", batch_size=2, model="tiny")


def _stored_aie(store, abs_scenes) -> int:
    from mfv_desktop.jobs import AIESpec
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.store.results import find_aie_result

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    rid, _ = run_to_end(run_in_store(store, AIESpec(scenes="dataset:gen", **AIE_KW)))
    aie_id = find_aie_result(store, rid, "above")
    assert aie_id is not None
    return aie_id


def test_a_vector_built_from_a_stored_aie_result_is_applied_without_a_run_folder(
    store, abs_scenes, scene_folder, tmp_path
):
    from mfv_desktop.jobs import (
        AIESpec,
        ApplySpec,
        ExtractSpec,
        execute,
        run_aie,
        run_apply,
        run_extract,
    )
    from mfv_desktop.jobs.stored import run_in_store
    from mfv_desktop.store.results import read_vector

    aie_id = _stored_aie(store, abs_scenes)
    rid_x, built = run_to_end(
        run_in_store(store, ExtractSpec(aie=f"aie:{aie_id}", relation="above", top_k=3, model="tiny"))
    )
    with store.session() as s:
        (vec,) = s.query(m.VectorRow).all()
        assert vec.source_run_id == rid_x and built["vector"] == f"vector:{vec.id}"
    scene = abs_scenes[2]
    apply = ApplySpec(image=scene.image, anchor=scene.anchor, strength=8.0, model="tiny")
    rid_a, applied = run_to_end(run_in_store(store, ApplySpec(**{**apply.__dict__, "vectors": (built["vector"],)})))
    # neither run wrote a file: their folders were never made
    for rid in (rid_x, rid_a):
        assert not (store.runs_dir / str(rid)).exists(), sorted((store.runs_dir / str(rid)).rglob("*"))
    # the same answer as today's path through files: AIE, extract and apply headless
    run_to_end(
        execute(AIESpec(scenes=str(scene_folder), out=str(tmp_path / "aie"), **AIE_KW), run_aie, tmp_path / "aie")
    )
    vfile = tmp_path / "above.safetensors"
    run_to_end(
        execute(
            ExtractSpec(aie=str(tmp_path / "aie"), relation="above", top_k=3, out=str(vfile), model="tiny"),
            run_extract,
            tmp_path,
        )
    )
    from mfv_desktop.vector_meta import read_vector_file

    meta, array = read_vector_file(vfile)
    stored = read_vector(store, vec.id)
    np.testing.assert_array_equal(stored.vector, array)
    assert stored.meta["heads"] == meta["heads"]
    run_to_end(
        execute(
            ApplySpec(**{**apply.__dict__, "vectors": (str(vfile),), "out": str(tmp_path / "apply")}),
            run_apply,
            tmp_path / "apply",
        )
    )
    on_files = json.loads((tmp_path / "apply" / "apply.json").read_text())
    on_files.pop("provenance")
    assert json.loads(json.dumps(applied)) == on_files


def test_an_evaluation_of_a_store_vector_names_it(store, abs_scenes):
    from mfv_desktop.jobs import EvaluateSpec, ExtractSpec
    from mfv_desktop.jobs.stored import run_in_store

    aie_id = _stored_aie(store, abs_scenes)
    _, built = run_to_end(
        run_in_store(store, ExtractSpec(aie=f"aie:{aie_id}", relation="above", top_k=3, model="tiny"))
    )
    vector_id = int(built["vector"].split(":")[1])
    rid, _ = run_to_end(
        run_in_store(
            store,
            EvaluateSpec(
                scenes="dataset:gen",
                split="b",
                ks=(0,),
                vectors=(built["vector"],),
                n_prompts=3,
                relations=("above",),
                model="tiny",
            ),
        )
    )
    with store.session() as s:
        rows = {r.condition.split(" '")[0]: r.vector_id for r in s.query(m.EvaluationRow).filter_by(run_id=rid)}
    assert rows == {"0-shot": None, "0-shot + FV": vector_id}


def test_the_chain_recorded_in_a_store_names_the_vector_of_each_evaluation_row(store):
    """The chain writes files that the store takes in after it: its 0-shot + FV rows still name the
    vector they measured (by the file's hash), the one the chain stored for that relation."""
    from mfv_desktop.jobs import ChainSpec
    from mfv_desktop.jobs.stored import run_in_store

    rid, _ = run_to_end(
        run_in_store(
            store,
            ChainSpec(
                model="tiny",
                relations=("above", "below"),
                n_extract=8,
                n_test=4,
                k=1,
                n_prompts=3,
                top_k=2,
                strengths=(1.0,),
                canvas=256,
            ),
        )
    )
    with store.session() as s:
        relation_of = {v.id: v.relation for v in s.query(m.VectorRow).filter_by(source_run_id=rid)}
        rows = [(r.relation, r.condition, r.vector_id) for r in s.query(m.EvaluationRow).filter_by(run_id=rid)]
    fv_rows = [(rel, vid) for rel, cond, vid in rows if "+ FV" in cond]
    assert sorted(rel for rel, _ in fv_rows) == ["above", "below"]
    assert all(vid is not None and relation_of[vid] == rel for rel, vid in fv_rows)
    assert all(vid is None for rel, cond, vid in rows if "+ FV" not in cond)


def test_store_references_parse_in_one_place_and_need_a_store():
    from mfv_desktop.errors import SpecError
    from mfv_desktop.jobs.io import Source, parse_ref

    assert (parse_ref("vector:3").kind, parse_ref("vector:3").id) == ("vector", 3)
    assert (parse_ref("aie:12").kind, parse_ref("aie:12").id) == ("aie", 12)
    assert (parse_ref("dataset:my set").kind, parse_ref("dataset:my set").value) == ("dataset", "my set")
    assert parse_ref("/tmp/a:b/above.safetensors").kind == "path"
    with pytest.raises(SpecError, match="vector:ID"):
        parse_ref("vector:three")
    with pytest.raises(SpecError, match="--store"):
        Source(None).scenes("dataset:gen")
