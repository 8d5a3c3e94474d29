"""Fine-tuned vectors, composite vectors and analogies (method.md §5-6) on the tiny OpenFlamingo."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from mfv_desktop.fv import add_vector, score
from mfv_desktop.fv.analogy import (
    AnalogyItem,
    BaseVector,
    analogy_items,
    composite_vector,
    composite_weights,
    solve,
    solve_all,
)
from mfv_desktop.fv.finetune import FinetuneConfig, finetune_vector
from mfv_desktop.progress import run_to_end
from mfv_desktop.tasks import TaskSpec, build_task_set


@pytest.fixture(scope="module")
def zeroshot(scenes, scene_folder):
    return build_task_set(scenes, scene_folder, TaskSpec(relations=("above",), kind="zeroshot", split="a")).tasks


def _vector(tiny, seed: int, norm: float = 4.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(tiny.geometry.d_model, generator=g)
    return v * norm / v.norm()


def test_finetuning_lowers_the_loss_and_keeps_the_best_epoch(tiny, zeroshot):
    train, val = zeroshot[:16], zeroshot[16:]
    weights = [p.detach().clone() for p in tiny.model.parameters()]
    flags = [p.requires_grad for p in tiny.model.parameters()]
    state = run_to_end(
        finetune_vector(
            tiny, train, val, layer=1, init=_vector(tiny, 0), config=FinetuneConfig(lr=0.3, epochs=4, batch_size=8)
        )
    )
    losses = [h["train_loss"] for h in state.history[1:]]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.05, losses
    assert all(b <= a + 1e-4 for a, b in zip(losses, losses[1:])), losses
    # the kept vector is the epoch with the best validation accuracy (lowest loss among ties)
    best = max(state.history, key=lambda h: (h["val_accuracy"], -h["val_loss"]))
    assert state.best_epoch == best["epoch"]
    assert not torch.equal(state.best, _vector(tiny, 0)) or state.best_epoch == 0
    # the model itself was not trained, and is left as it was found
    assert all(torch.equal(a, p) for a, p in zip(weights, tiny.model.parameters()))
    assert flags == [p.requires_grad for p in tiny.model.parameters()]


def test_a_composite_of_one_vector_with_weight_1_is_that_vectors_injection(tiny, zeroshot):
    v = _vector(tiny, 1)
    part = BaseVector(v, layer=2, strength=1.5, relation="above")
    item = AnalogyItem(zeroshot[0], zeroshot[3])
    r = solve(tiny, item, [part])
    assert r.weights.tolist() == [1.0] and r.layer == 2
    torch.testing.assert_close(composite_vector([part], r.weights), 1.5 * v)
    batch = tiny.encode([item.target])
    with torch.no_grad(), add_vector(tiny, 2, v, 1.5):
        probs = tiny.run(batch).softmax(-1)[0]
    assert r.prediction == int(probs.argmax())
    assert r.prediction_prob == pytest.approx(float(probs.max()), abs=1e-6)
    assert r.answer_prob == pytest.approx(float(probs[batch.answer_ids[0]]), abs=1e-6)


def test_composite_weights_sum_to_one_and_follow_the_source_probabilities(tiny, zeroshot):
    parts = [BaseVector(_vector(tiny, s, norm=6.0), layer=1, relation=f"r{s}") for s in range(3)]
    items = analogy_items(zeroshot[:6], seed=0)
    results = run_to_end(solve_all(tiny, items, parts, batch_size=4))
    for item, r in zip(items, results):
        src = tiny.encode([item.source])
        expected = []
        for p in parts:
            with add_vector(tiny, p.layer, p.vector, p.strength):
                expected.append(float(score(tiny, src).answer_prob[0]))
        np.testing.assert_allclose(r.probs, expected, atol=1e-6)
        assert r.weights.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(r.weights, np.array(expected) / sum(expected), atol=1e-6)
    # the options are never the default, and behave as named
    p = np.array([0.1, 0.3, 0.6])
    np.testing.assert_allclose(composite_weights(p), p)
    np.testing.assert_allclose(composite_weights(p, "equal"), [1 / 3] * 3)
    sharp = composite_weights(p, "softmax", temperature=0.1)
    assert sharp.sum() == pytest.approx(1) and sharp[2] > 0.99


def test_solving_in_batches_equals_solving_one_at_a_time(tiny, zeroshot):
    parts = [BaseVector(_vector(tiny, s), layer=1 + s % 2, relation=f"r{s}") for s in range(2)]
    items = analogy_items(zeroshot[:5], seed=1)
    batched = run_to_end(solve_all(tiny, items, parts, batch_size=8))
    for item, b in zip(items, batched):
        one = solve(tiny, item, parts)
        assert (one.prediction, one.layer) == (b.prediction, b.layer)
        assert one.prediction_prob == pytest.approx(b.prediction_prob, abs=1e-5)


@pytest.fixture(scope="module")
def extracted(tiny_folder, scene_folder, tmp_path_factory):
    """An extracted 'above' vector for the tiny model (AIE on a few prompts, top 3 heads)."""
    from mfv_desktop.jobs import AIESpec, ExtractSpec, execute, run_aie, run_extract
    from mfv_desktop.progress import run_to_end

    out = tmp_path_factory.mktemp("vec")
    model = dict(model=str(tiny_folder))
    run_to_end(
        execute(
            AIESpec(
                scenes=str(scene_folder),
                out=str(out / "aie"),
                relations=("above", "left"),
                k=2,
                n_prompts=3,
                split="a",
                **model,
            ),
            run_aie,
            out / "aie",
        )
    )
    paths = {}
    for rel in ("above", "left"):
        paths[rel] = str(out / f"{rel}.safetensors")
        run_to_end(
            execute(
                ExtractSpec(
                    aie=str(out / "aie"), relation=rel, out=paths[rel], top_k=3, layer=1, strength=2.0, **model
                ),
                run_extract,
                out,
            )
        )
    return paths


def _ffv_spec(tiny_folder, scene_folder, vector, out, **kw):
    from mfv_desktop.jobs import FinetuneSpec

    base = dict(
        vector=vector,
        scenes=str(scene_folder),
        out=str(out),
        split="a",
        n_prompts=24,
        lr=0.2,
        epochs=4,
        train_batch_size=8,
        model=str(tiny_folder),
    )
    return FinetuneSpec(**{**base, **kw})


def test_cancelling_fine_tuning_keeps_the_best_vector_so_far_and_resume_finishes_it(
    tiny_folder, scene_folder, extracted, tmp_path
):
    from mfv_desktop.fv.vector_file import FunctionVector
    from mfv_desktop.jobs import Cancelled, execute, run_finetune
    from mfv_desktop.progress import drive

    spec = _ffv_spec(tiny_folder, scene_folder, extracted["above"], tmp_path / "ft")
    seen = []
    with pytest.raises(Cancelled):  # cancelled right after epoch 2's validation
        drive(execute(spec, run_finetune, tmp_path / "ft"), seen.append, lambda: seen[-1].partial.get("epoch") == 2)
    last = seen[-1].partial
    saved = FunctionVector.load(tmp_path / "ft" / "ffv.safetensors")
    torch.testing.assert_close(saved.vector, last["best"])
    assert saved.provenance["best_epoch"] == last["best_epoch"]
    assert saved.provenance["kind"] == "finetuned" and saved.strength == 1.0 and saved.layer == 1
    # resuming goes on from epoch 2 and ends where an uninterrupted run ends
    seen.clear()
    resumed = drive(execute(spec, run_finetune, tmp_path / "ft"), seen.append)
    assert min(p.partial["epoch"] for p in seen if "epoch" in p.partial) == 3
    whole = drive(execute(replace(spec, out=str(tmp_path / "whole")), run_finetune, tmp_path / "whole"))
    assert [h["epoch"] for h in resumed["history"]] == [0, 1, 2, 3, 4]
    for a, b in zip(resumed["history"], whole["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)
    torch.testing.assert_close(
        FunctionVector.load(tmp_path / "ft" / "ffv.safetensors").vector,
        FunctionVector.load(tmp_path / "whole" / "ffv.safetensors").vector,
        atol=1e-5,
        rtol=1e-5,
    )
    assert not (tmp_path / "ft" / "state.safetensors").exists()


def test_a_cancelled_fine_tuning_in_the_store_keeps_its_vector(store, tiny_folder, scene_folder, extracted):
    from sqlalchemy import select

    from mfv_desktop.jobs import Cancelled
    from mfv_desktop.jobs.stored import import_vector, run_in_store
    from mfv_desktop.progress import drive
    from mfv_desktop.store import models as m

    base_id = import_vector(store, extracted["above"])
    spec = _ffv_spec(tiny_folder, scene_folder, f"vector:{base_id}", "", epochs=3)
    seen = []
    with pytest.raises(Cancelled):
        drive(run_in_store(store, spec), seen.append, lambda: seen[-1].partial.get("epoch") == 1)
    with store.session() as s:
        run = s.scalars(select(m.Run)).one()
        rows = s.scalars(select(m.VectorRow).where(m.VectorRow.kind == "finetuned")).all()
        assert run.status == "cancelled"
        assert len(rows) == 1 and rows[0].relation == "above" and rows[0].source_run_id == run.id


def test_compose_and_analogy_from_the_command_line_into_the_store(tmp_path, extracted, tiny_folder, abs_scenes):
    from sqlalchemy import select

    from mfv_desktop.cli import main
    from mfv_desktop.store import models as m
    from mfv_desktop.store import open_store

    data = tmp_path / "data"
    src, tgt = abs_scenes[0], abs_scenes[1]
    model = ["--model", str(tiny_folder)]
    assert main(["-q", "--store", str(data), "import", "vector", extracted["above"]]) == 0
    assert (
        main(
            [
                "-q",
                "--store",
                str(data),
                "compose",
                "--vectors",
                "vector:1",
                extracted["left"],
                "--source",
                src.image,
                "--a",
                src.anchor,
                "--b",
                src.target(src.anchor, "above"),
                *model,
            ]
        )
        == 0
    )
    store = open_store(data)
    try:
        with store.session() as s:
            comp = s.scalars(select(m.VectorRow).where(m.VectorRow.kind == "composite")).one()
            weights = {p.parent_id: p.weight for p in comp.parents}
            assert len(comp.parents) == 2 and sum(weights.values()) == pytest.approx(1)
            assert 1 in weights  # the store's vector is a parent, found by its content
            probs = comp.provenance["parents"]
            assert [p["weight"] for p in probs] == pytest.approx(
                [p["prob"] / sum(q["prob"] for q in probs) for p in probs]
            )
    finally:
        store.close()
    out = tmp_path / "analogy"
    assert (
        main(
            [
                "-q",
                "analogy",
                "--out",
                str(out),
                "--vectors",
                extracted["above"],
                extracted["left"],
                "--source",
                src.image,
                "--a",
                src.anchor,
                "--b",
                src.target(src.anchor, "above"),
                "--target",
                tgt.image,
                "--c",
                tgt.anchor,
                *model,
            ]
        )
        == 0
    )
    res = json.loads((out / "analogy.json").read_text())
    assert set(res) >= {"weights", "probs", "composite", "0-shot", "1-shot ICL"}
    assert sum(res["weights"].values()) == pytest.approx(1)
    assert res["composite"]["correct"] is None  # D was not given: nothing to score
    assert len(res["composite"]["top"]) == 5 and res["composite"]["answer"] == res["composite"]["top"][0][0]


def test_apply_shows_the_answer_with_and_without_the_vector(tmp_path, extracted, tiny_folder, abs_scenes, tiny):
    from mfv_desktop.cli import main
    from mfv_desktop.fv.vector_file import FunctionVector
    from mfv_desktop.tasks import Shot, Task

    scene = abs_scenes[2]
    out = tmp_path / "apply"
    assert (
        main(
            [
                "-q",
                "apply",
                "--out",
                str(out),
                "--vectors",
                extracted["above"],
                "--image",
                scene.image,
                "--anchor",
                scene.anchor,
                "--strength",
                "8",
                "--model",
                str(tiny_folder),
            ]
        )
        == 0
    )
    res = json.loads((out / "apply.json").read_text())
    assert res["layer"] == 1 and len(res["bars"]) >= 5
    # the same numbers as running the prompt by hand with the vector added at layer 1, strength 8
    task = Task("apply", "zeroshot", (), Shot(scene.image, scene.image, scene.anchor, scene.anchor, "apply"))
    batch = tiny.encode([task])
    fv = FunctionVector.load(extracted["above"])
    with torch.no_grad():
        plain = tiny.run(batch)[0].softmax(-1)
        with add_vector(tiny, 1, fv.vector, 8.0):
            steered = tiny.run(batch)[0].softmax(-1)
    assert res["without"] == tiny.decode_token(int(plain.argmax())).strip()
    assert res["with"] == tiny.decode_token(int(steered.argmax())).strip()
    top = res["bars"][0]
    assert max(top["with"], top["without"]) == pytest.approx(max(float(plain.max()), float(steered.max())), abs=1e-5)
    # a vector made for another model is refused by name
    other = tmp_path / "other.safetensors"
    FunctionVector(
        vector=torch.ones(7),
        label="x",
        relation="above",
        model_id="elsewhere",
        d_model=7,
        n_layers=2,
        layer=0,
        heads=[],
        bias="per_head",
        strength=1.0,
        provenance={},
    ).save(other)
    assert (
        main(
            [
                "-q",
                "apply",
                "--out",
                str(out),
                "--vectors",
                str(other),
                "--image",
                scene.image,
                "--anchor",
                scene.anchor,
                "--model",
                str(tiny_folder),
            ]
        )
        == 2
    )


def test_an_analogy_with_an_unreadable_image_names_it(tmp_path, extracted, tiny_folder, capsys):
    from mfv_desktop.cli import main

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png")
    rc = main(
        [
            "-q",
            "analogy",
            "--out",
            str(tmp_path / "o"),
            "--vectors",
            extracted["above"],
            "--source",
            str(bad),
            "--a",
            "cat",
            "--b",
            "dog",
            "--target",
            str(bad),
            "--c",
            "cat",
            "--model",
            str(tiny_folder),
        ]
    )
    assert rc == 2 and "broken.png" in capsys.readouterr().err


def test_the_report_has_the_papers_tables(tmp_path):
    from mfv_desktop.cli import main

    out = tmp_path / "r"
    assert (
        main(
            [
                "-q",
                "report",
                "--model",
                "tiny",
                "--out",
                str(out),
                "--n-prompts",
                "6",
                "--n-aie",
                "2",
                "--n-finetune",
                "10",
                "--epochs",
                "1",
                "--ks",
                "1,4",
                "--strengths",
                "1,4",
            ]
        )
        == 0
    )
    md = (out / "report.md").read_text()
    for section in (
        "## Base relations (test split)",
        "## Novel objects",
        "## One-shot analogies",
        "## Heads",
        "## Layer x strength sweep",
        "## Fine-tuning",
    ):
        assert section in md
    rep = json.loads((out / "report.json").read_text())
    conds = {r[1] for r in rep["test"]["rows"]}
    assert conds == {"0-shot", "1-shot ICL", "4-shot ICL", "0-shot + FV", "0-shot + FFV"}
    assert {r[1] for r in rep["diagonal"]["rows"]} == {
        "0-shot",
        "1-shot ICL",
        "4-shot ICL",
        "composite FV",
        "composite FFV",
    }
    for per_rel in rep["diagonal"]["mean_weights"].values():
        for w in per_rel.values():
            assert sum(w.values()) == pytest.approx(1, abs=1e-2)
    rows = (out / "report.csv").read_text().splitlines()
    assert rows[0] == "split,relation,condition,n,accuracy" and len(rows) == 1 + 4 * 5 + 4 * 5 + 4 * 5
    # the paper's numbers for the model's family beside ours, "—" where the paper has none, and which were used
    assert "paper, OpenFlamingo-4B" in md and "19.0 (GQA)" in md and "Qwen3-VL" not in md
    assert [line for line in md.splitlines() if line.startswith("| 1-shot ICL |")][0].endswith(" — |")
    assert rep["paper"]["family"] == rep["provenance"]["family"] == "openflamingo"
    assert rep["paper"]["model"] == "OpenFlamingo-4B" and rep["paper"]["diagonal"]["composite FFV"] == "16.8"
    # the heads table says what each AIE averages over: the random model answers no clean prompt, so the
    # authors' matched-only convention (the default) fell back to every corrupted prompt
    assert "| averaged over |" in md and "| all 2 corrupted prompts (none matched) |" in md


def _summary(family: str) -> dict:
    """A report's summary as run_report keeps it, with made-up accuracies, for a model of `family`."""
    from mfv_desktop.jobs.report import paper_numbers
    from mfv_desktop.scenes import BASE_RELATIONS, DIAGONAL_RELATIONS

    test = ("0-shot", "1-shot ICL", "4-shot ICL", "0-shot + FV", "0-shot + FFV")
    diagonal = ("0-shot", "1-shot ICL", "4-shot ICL", "composite FV", "composite FFV")
    return {
        "provenance": {"model_id": "m", "family": family},
        "paper": paper_numbers(family),
        "notes": [],
        "test": {"split": "test", "rows": [[r, c, 6, 0.5] for r in BASE_RELATIONS for c in test]},
        "diagonal": {
            "split": "diagonal",
            "n": 24,
            "mean_weights": {},
            "rows": [[r, c, 6, 0.25] for r in DIAGONAL_RELATIONS for c in diagonal],
        },
        "aie": {},
        "sweeps": {},
        "finetune": {},
    }


def _paper_cell(md_part: str, condition: str) -> str:
    """The last cell (the paper's) of a condition's row in a part of the Markdown."""
    row = next(line for line in md_part.splitlines() if line.startswith(f"| {condition} |"))
    return row.rstrip(" |").rsplit(" | ", 1)[1]


def test_a_qwen3vl_report_shows_the_papers_qwen3vl_numbers(tmp_path):
    from mfv_desktop.cli import main

    out = tmp_path / "r"
    assert (
        main(
            [
                "-q",
                "report",
                "--model",
                "tiny-qwen3vl",
                "--out",
                str(out),
                "--n-prompts",
                "6",
                "--n-aie",
                "2",
                "--n-finetune",
                "10",
                "--epochs",
                "1",
                "--ks",
                "1,4",
                "--strengths",
                "1,4",
            ]
        )
        == 0
    )
    md = (out / "report.md").read_text()
    assert "paper, Qwen3-VL-4B (mean)" in md and "OpenFlamingo" not in md
    base, diagonal = md.split("## One-shot analogies")
    assert _paper_cell(base, "4-shot ICL") == "26.8 (synthetic)"
    assert _paper_cell(base, "0-shot + FFV") == "72.2 (synthetic)"
    assert _paper_cell(diagonal, "4-shot ICL") == "28.7" and _paper_cell(diagonal, "composite FFV") == "45.1"
    # §7 gives Qwen3-VL no 0-shot, 1-shot or 0-shot + FV number (nor a composite of unrefined FVs)
    assert [_paper_cell(base, c) for c in ("0-shot", "1-shot ICL", "0-shot + FV")] == ["—"] * 3
    assert _paper_cell(diagonal, "composite FV") == _paper_cell(diagonal, "0-shot") == "—"
    for theirs in ("4.8", "19.0", "8-9", "about 25", "8.1", "16.8"):  # OpenFlamingo-4B's
        assert theirs not in md
    rep = json.loads((out / "report.json").read_text())
    assert rep["paper"]["family"] == rep["provenance"]["family"] == "qwen3vl"
    assert rep["paper"]["model"] == "Qwen3-VL-4B" and rep["paper"]["test"]["0-shot + FFV"] == "72.2 (synthetic)"


def test_a_family_the_paper_did_not_run_gets_no_paper_column():
    from mfv_desktop.jobs.report import render

    md = render(_summary("llava"))
    assert "paper," not in md and "| **50.0** |\n" in md
    assert md.count("The paper gives no numbers for this model family (llava): no paper column.") == 2


def test_every_family_with_paper_numbers_is_registered():
    """A renamed family would silently lose its paper column."""
    from mfv_desktop.backends.registry import FAMILIES
    from mfv_desktop.jobs.report import PAPER

    assert set(PAPER) <= set(FAMILIES) and {"openflamingo", "qwen3vl"} <= set(PAPER)
