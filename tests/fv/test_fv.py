"""Known-answer tests of hooks, mediation and function vectors on the tiny OpenFlamingo."""

from __future__ import annotations

import pytest
import torch

from mfv_desktop.backends import BackendError
from mfv_desktop.fv import (
    add_vector,
    average_indirect_effect,
    evaluate,
    function_vector,
    injection,
    layer_sweep,
    mean_head_activations,
    patch_heads,
    record_heads,
    score,
    top_heads,
)
from mfv_desktop.fv.vector_file import FunctionVector
from mfv_desktop.progress import run_to_end
from mfv_desktop.tasks import TaskSpec, build_task_set


@pytest.fixture(scope="module")
def clean(scenes, scene_folder):
    return build_task_set(scenes, scene_folder, TaskSpec(relations=("above",), k=2, split="a")).tasks


@pytest.fixture(scope="module")
def corrupted(scenes, scene_folder):
    spec = TaskSpec(relations=("above",), k=2, split="a", kind="corrupted")
    return build_task_set(scenes, scene_folder, spec).tasks


def test_patch_in_pre_hook_equals_recomputing_the_output_projection(tiny, clean):
    batch = tiny.encode(clean[:3])
    layer, head, g = 2, 1, tiny.geometry
    value = torch.randn(g.d_head)
    dense = tiny.head_site(layer)
    seen = {}
    h = dense.register_forward_hook(lambda m, a, out: seen.update(x=a[0].detach().clone(), y=out.detach().clone()))
    try:
        tiny.run(batch)
        x_clean = seen["x"]
        with patch_heads(tiny, {layer: [(head, value)]}):
            tiny.run(batch)
    finally:
        h.remove()
    x_edit = x_clean.clone()
    x_edit[:, -1, head * g.d_head : (head + 1) * g.d_head] = value
    with torch.no_grad():
        expected = dense(x_edit)
    torch.testing.assert_close(seen["y"], expected, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(seen["y"][:, -1], dense(x_clean)[:, -1].detach())


def test_zeroing_a_heads_value_rows_equals_zeroing_its_slice(tiny_folder, clean):
    from mfv_desktop.backends.openflamingo import OpenFlamingoBackend

    b = OpenFlamingoBackend.from_folder(tiny_folder)
    g, layer, head = b.geometry, 1, 2
    batch = b.encode(clean[:3])
    with patch_heads(b, {layer: [(head, torch.zeros(g.d_head))]}, position=slice(None)):
        sliced = b.run(batch)
    qkv = b.model.lang_encoder.gpt_neox.layers[layer].decoder_layer.attention.query_key_value
    rows = torch.arange(3 * g.d_model).view(g.n_heads, 3, g.d_head)[head, 2]  # fused per head as [q|k|v]
    with torch.no_grad():
        qkv.weight[rows] = 0
        qkv.bias[rows] = 0
    torch.testing.assert_close(b.run(batch), sliced, atol=1e-5, rtol=1e-5)


def test_adding_a_vector_at_the_last_token_changes_only_the_last_position(tiny, clean):
    batch = tiny.encode(clean[:2])
    before = tiny.run(batch, all_positions=True)
    with add_vector(tiny, 1, torch.randn(tiny.geometry.d_model) * 5):
        after = tiny.run(batch, all_positions=True)
    torch.testing.assert_close(after[:, :-1], before[:, :-1])
    assert (after[:, -1] - before[:, -1]).abs().max() > 1e-2


def test_vector_of_the_wrong_size_is_refused(tiny):
    with pytest.raises(ValueError, match="made for another model"):
        with add_vector(tiny, 0, torch.zeros(7)):
            pass


def test_patching_a_head_with_its_own_activation_gives_zero_indirect_effect(tiny, corrupted):
    batch = tiny.encode(corrupted[:4])
    with record_heads(tiny) as z:
        base = score(tiny, batch).answer_prob
    for layer, head in [(0, 0), (2, 3), (3, 1)]:
        with patch_heads(tiny, {layer: [(head, z[layer][:, head])]}):
            patched = score(tiny, batch).answer_prob
        assert torch.allclose(patched, base, atol=1e-7)


def test_mean_activations_and_aie_are_the_same_batched_or_one_at_a_time(tiny, clean, corrupted):
    m1 = run_to_end(mean_head_activations(tiny, clean, batch_size=1, only_correct=False))
    m5 = run_to_end(mean_head_activations(tiny, clean, batch_size=5, only_correct=False))
    torch.testing.assert_close(m1.mean, m5.mean, atol=1e-5, rtol=1e-5)
    a1 = run_to_end(average_indirect_effect(tiny, corrupted[:6], m1.mean, batch_size=1))
    a4 = run_to_end(average_indirect_effect(tiny, corrupted[:6], m1.mean, batch_size=4))
    assert a1.aie.shape == (4, 4) and abs(a1.aie).max() > 0
    assert abs(a1.aie - a4.aie).max() < 1e-5


def test_aie_matches_a_direct_computation_and_resumes(tiny, clean, corrupted):
    mean = run_to_end(mean_head_activations(tiny, clean, only_correct=False)).mean
    res = run_to_end(average_indirect_effect(tiny, corrupted[:5], mean, batch_size=2))
    # direct: one prompt, one head, by definition
    layer, head = top_heads(res.aie, 1)[0]
    ies = []
    for t in corrupted[:5]:
        b = tiny.encode([t])
        base = score(tiny, b).answer_prob
        with patch_heads(tiny, {layer: [(head, mean[layer, head])]}):
            ies.append(float(score(tiny, b).answer_prob - base))
    assert abs(sum(ies) / 5 - res.aie[layer, head]) < 1e-6
    # an interrupted run continued from its partial result gives the same matrix
    first = run_to_end(average_indirect_effect(tiny, corrupted[:2], mean, batch_size=2))
    resumed = run_to_end(average_indirect_effect(tiny, corrupted[:5], mean, batch_size=2, start=first))
    assert abs(resumed.aie - res.aie).max() < 1e-6


def test_matched_only_aie_is_the_plain_average_over_the_prompts_whose_clean_twin_is_answered(diagonal_folder, tmp_path):
    """The authors' convention, checked by hand: the bundled model answers about half the clean prompts of
    an untrained relation; the AIE job's matrix is, head by head, the mean indirect effect over exactly
    the corrupted prompts whose clean prompt it answers correctly, and differs from the one over all."""
    import numpy as np

    from mfv_desktop.backends import load_backend
    from mfv_desktop.jobs import AIESpec, run_aie
    from mfv_desktop.jobs.science import load_arrays
    from mfv_desktop.scenes import load_scene_set

    spec = AIESpec(
        scenes=str(diagonal_folder),
        out=str(tmp_path / "m"),
        relations=("below_left",),
        k=2,
        n_prompts=8,
        split="d",
        model="bundled",
    )
    assert spec.matched_only  # the default
    run_to_end(run_aie(spec))
    run_to_end(run_aie(AIESpec(**{**spec.__dict__, "out": str(tmp_path / "a"), "matched_only": False})))
    matched = load_arrays(tmp_path / "m" / "below_left" / "aie.safetensors")["aie"]
    everyone = load_arrays(tmp_path / "a" / "below_left" / "aie.safetensors")["aie"]
    mean = torch.from_numpy(load_arrays(tmp_path / "m" / "below_left" / "mean_activations.safetensors")["mean"])

    backend = load_backend("bundled")
    g = backend.geometry
    scenes = load_scene_set(diagonal_folder)
    base = dict(relations=("below_left",), k=2, split="d", max_per_relation=8)
    clean = build_task_set(scenes, diagonal_folder, TaskSpec(**base)).tasks
    corrupted = build_task_set(scenes, diagonal_folder, TaskSpec(kind="corrupted", **base)).tasks
    ies = []
    for c, x in zip(clean, corrupted):
        assert (c.query, sorted(d.image for d in c.demos)) == (x.query, sorted(d.image for d in x.demos))
        if not bool(score(backend, backend.encode([c])).correct[0]):
            continue
        batch = backend.encode([x])
        p0 = float(score(backend, batch).answer_prob[0])
        ie = np.zeros((g.n_layers, g.n_heads))
        for layer in range(g.n_layers):
            for head in range(g.n_heads):
                with patch_heads(backend, {layer: [(head, mean[layer, head])]}):
                    ie[layer, head] = float(score(backend, batch).answer_prob[0]) - p0
        ies.append(ie)
    assert 0 < len(ies) < len(corrupted) == 8
    np.testing.assert_allclose(matched, np.mean(ies, 0), atol=1e-6, rtol=0)
    assert np.abs(matched - everyone).max() > 0.1 * np.abs(everyone).max() > 0


def test_mean_over_correct_prompts_falls_back_with_a_note(tiny, clean):
    m = run_to_end(mean_head_activations(tiny, clean, only_correct=True))
    if m.clean_accuracy == 0:
        assert not m.only_correct and "no clean prompt" in m.notes[0]
    else:
        assert m.only_correct and m.n_used == round(m.clean_accuracy * m.n_total)


def test_top_heads_and_function_vector(tiny):
    import numpy as np

    aie = np.zeros((4, 4))
    aie[2, 1], aie[0, 3], aie[3, 0] = 0.3, 0.2, 0.1
    assert top_heads(aie, 2) == [(2, 1), (0, 3)]
    g = tiny.geometry
    mean = torch.randn(g.n_layers, g.n_heads, g.d_head)
    heads = [(2, 1), (0, 3)]
    v_none = function_vector(tiny, mean, heads, bias="none")
    v_bias = function_vector(tiny, mean, heads, bias="per_head")
    expect = torch.zeros(g.d_model)
    for layer, head in heads:  # dense_l(pad_h(a)) computed by running the projection itself
        x = torch.zeros(g.n_heads * g.d_head)
        x[head * g.d_head : (head + 1) * g.d_head] = mean[layer, head]
        with torch.no_grad():
            expect += tiny.head_site(layer)(x)
    torch.testing.assert_close(v_bias, expect, atol=1e-5, rtol=1e-5)
    bias_sum = sum(tiny.head_site(layer).bias.detach() for layer, _ in heads)
    torch.testing.assert_close(v_bias - v_none, bias_sum, atol=1e-5, rtol=1e-5)


def test_injection_and_layer_sweep(tiny, scenes, scene_folder):
    zs = build_task_set(scenes, scene_folder, TaskSpec(relations=("left",), kind="zeroshot", split="b")).tasks
    v = torch.randn(tiny.geometry.d_model) * 20
    base = run_to_end(evaluate(tiny, zs))
    pushed = run_to_end(evaluate(tiny, zs, intervention=injection(v, 2)))
    assert base.n == pushed.n == len(zs)
    assert pushed.predictions != base.predictions
    sweep = run_to_end(layer_sweep(tiny, zs, v, layers=[1, 2], strengths=[0.5, 1.0]))
    assert sweep.layers == [1, 2] and sweep.accuracy[1][1] == pushed.accuracy
    assert sweep.baseline.accuracy == base.accuracy
    assert sweep.best in [(layer, s) for s in (0.5, 1.0) for layer in (1, 2)]
    assert len(sweep.rows()) == 4


def test_vector_file_round_trip_and_geometry_check(tiny, tmp_path):
    g = tiny.geometry
    fv = FunctionVector(
        torch.randn(g.d_model),
        "above top2",
        "above",
        tiny.model_id,
        g.d_model,
        g.n_layers,
        2,
        [(2, 1), (0, 3)],
        provenance={"seed": 0},
    )
    back = FunctionVector.load(fv.save(tmp_path / "v.safetensors"))
    torch.testing.assert_close(back.vector, fv.vector)
    assert back.heads == [(2, 1), (0, 3)] and back.layer == 2 and back.relation == "above"
    back.check_fits(tiny)
    other = FunctionVector(torch.randn(2560), "x", "above", "openflamingo-4b", 2560, 32, 18, [(18, 3)])
    with pytest.raises(BackendError, match="made for model openflamingo-4b.*Extract the vector again"):
        FunctionVector.load(other.save(tmp_path / "o.safetensors")).check_fits(tiny)
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(BackendError, match="not a function vector file"):
        FunctionVector.load(tmp_path / "junk.safetensors")
