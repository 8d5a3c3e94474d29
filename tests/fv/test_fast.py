"""The fast paths of fv/fast.py against the reference loops they replace (exact, up to rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfv_desktop.fv import average_indirect_effect, layer_sweep, mean_head_activations
from mfv_desktop.fv.fast import (
    attribution_preview,
    fast_average_indirect_effect,
    fast_layer_sweep,
    rank_correlation,
)
from mfv_desktop.progress import run_to_end
from mfv_desktop.tasks import TaskSpec, build_task_set


@pytest.fixture(scope="module")
def bundled():
    from mfv_desktop.backends import load_backend

    return load_backend("bundled")


@pytest.fixture(scope="module")
def sparse(tmp_path_factory):
    """A tiny model with cross-attention before every second layer only, as OpenFlamingo-4B has, and
    GPT-NeoX's sequential residual (attention, then MLP)."""
    from mfv_desktop.backends.openflamingo import OpenFlamingoBackend
    from mfv_desktop.backends.small import SmallConfig, build_small_model

    config = SmallConfig(seed=2, cross_attn_every_n_layers=2, parallel_residual=False)
    folder = build_small_model(tmp_path_factory.mktemp("sparse"), config)
    return OpenFlamingoBackend.from_folder(folder)


def _tasks(scenes, folder, kind, corruption="paper", n=None, k=2):
    spec = TaskSpec(relations=("above", "left"), k=k, split="a", kind=kind, corruption=corruption, max_per_relation=n)
    return build_task_set(scenes, folder, spec).tasks


@pytest.mark.parametrize("backend_name", ["tiny", "sparse", "bundled"])
def test_the_last_position_alone_equals_the_full_forward(request, backend_name, scenes, scene_folder):
    from mfv_desktop.fv import record_heads

    backend = request.getfixturevalue(backend_name)
    batch = backend.encode(_tasks(scenes, scene_folder, "clean", n=3))
    outputs = {}
    hooks = [
        backend.residual_site(i).register_forward_hook(
            lambda _m, _a, out, i=i: outputs.__setitem__(i, (out[0] if isinstance(out, tuple) else out)[:, -1])
        )
        for i in range(backend.geometry.n_layers)
    ]
    try:
        with torch.no_grad(), record_heads(backend) as z:
            full = backend.run(batch)
    finally:
        for h in hooks:
            h.remove()
    last = backend.last_position(batch)
    torch.testing.assert_close(last.base_logits, full, atol=1e-4, rtol=1e-4)
    for i in range(backend.geometry.n_layers):  # every layer's state, as the full forward has it
        torch.testing.assert_close(last.h_out[i], outputs[i], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(last.z[i], z[i].flatten(1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("corruption", ["paper", "todd"])
@pytest.mark.parametrize(
    "backend_name,batch_size,max_columns", [("tiny", 1, None), ("tiny", 3, 7), ("tiny", 8, None), ("sparse", 3, 5)]
)
def test_fast_aie_equals_the_reference_loop_on_small_models(
    request, backend_name, scenes, scene_folder, corruption, batch_size, max_columns
):
    tiny = request.getfixturevalue(backend_name)
    clean = _tasks(scenes, scene_folder, "clean", n=3)
    corrupted = _tasks(scenes, scene_folder, "corrupted", corruption, n=3)
    # the random model's outputs are near uniform: patch with large values for effects worth comparing
    mean = 30 * run_to_end(mean_head_activations(tiny, clean, 4)).mean
    ref = run_to_end(average_indirect_effect(tiny, corrupted, mean, batch_size))
    fast = run_to_end(fast_average_indirect_effect(tiny, corrupted, mean, batch_size, max_columns=max_columns))
    assert fast.n_prompts == ref.n_prompts == 6
    np.testing.assert_allclose(fast.aie, ref.aie, atol=1e-5, rtol=0)
    assert fast.base_prob == pytest.approx(ref.base_prob, abs=1e-6)
    assert np.abs(ref.aie).max() > 1e-3  # the patches did something to compare
    assert np.abs(fast.aie - ref.aie).max() < 1e-3 * np.abs(ref.aie).max()


@pytest.mark.parametrize("corruption", ["paper", "todd"])
def test_fast_aie_equals_the_reference_loop_on_the_bundled_model(bundled, scenes, scene_folder, corruption):
    clean = _tasks(scenes, scene_folder, "clean", n=3, k=3)
    corrupted = _tasks(scenes, scene_folder, "corrupted", corruption, n=3, k=3)
    mean = run_to_end(mean_head_activations(bundled, clean, 8)).mean
    ref = run_to_end(average_indirect_effect(bundled, corrupted, mean, 4))
    fast = run_to_end(fast_average_indirect_effect(bundled, corrupted, mean, 4, max_columns=50))
    np.testing.assert_allclose(fast.aie, ref.aie, atol=1e-5, rtol=0)
    assert np.abs(ref.aie).max() > 0.01
    assert np.abs(fast.aie - ref.aie).max() < 1e-3 * np.abs(ref.aie).max()


@pytest.mark.parametrize("model", ["tiny", "bundled"])
def test_both_conventions_give_the_same_aie_fast_and_by_reference(model, diagonal_folder, tmp_path):
    """The AIE job, matched-only (the authors') and over all corrupted prompts, fast and by the reference
    loop. The bundled model answers about half the clean prompts of an untrained relation: the two
    conventions average over different prompts. The random tiny model answers none: matched-only falls
    back to all of them and says so."""
    import json

    from mfv_desktop.jobs import AIESpec, run_aie
    from mfv_desktop.jobs.science import load_arrays

    got = {}
    for matched in (True, False):
        for method in ("fast", "reference"):
            out = tmp_path / f"{matched}-{method}"
            run_to_end(
                run_aie(
                    AIESpec(
                        scenes=str(diagonal_folder),
                        out=str(out),
                        relations=("above_right",),
                        k=2,
                        n_prompts=8,
                        split="d",
                        matched_only=matched,
                        method=method,
                        model=model,
                        batch_size=3,
                    )
                )
            )
            got[matched, method] = (
                load_arrays(out / "above_right" / "aie.safetensors")["aie"],
                json.loads((out / "above_right" / "aie.json").read_text()),
            )
    for matched in (True, False):
        np.testing.assert_allclose(got[matched, "fast"][0], got[matched, "reference"][0], atol=1e-6, rtol=0)
        assert got[matched, "fast"][1]["n_prompts"] == got[matched, "reference"][1]["n_prompts"]
    (aie_m, m), (aie_a, a) = got[True, "fast"], got[False, "fast"]
    assert m["matched_only"] is True and a["matched_only"] is False
    assert m["n_corrupted"] == a["n_corrupted"] == a["n_prompts"] == 8
    assert m["n_matched"] == a["n_matched"] == round(8 * m["clean_accuracy"])
    if model == "bundled":
        assert 0 < m["n_matched"] < 8 and m["n_prompts"] == m["n_matched"]
        assert np.abs(aie_m - aie_a).max() > 0.1 * np.abs(aie_a).max() > 0
    else:
        assert m["n_matched"] == 0 and m["n_prompts"] == 8
        assert "the AIE is over all 8 corrupted prompts" in m["notes"][-1]
        np.testing.assert_array_equal(aie_m, aie_a)


def test_fast_aie_resumes_like_the_reference(tiny, scenes, scene_folder):
    clean = _tasks(scenes, scene_folder, "clean", n=3)
    corrupted = _tasks(scenes, scene_folder, "corrupted", n=3)
    mean = run_to_end(mean_head_activations(tiny, clean, 4)).mean
    whole = run_to_end(fast_average_indirect_effect(tiny, corrupted, mean, 2))
    gen = fast_average_indirect_effect(tiny, corrupted, mean, 2)
    p = next(gen)
    gen.close()
    from mfv_desktop.fv import AIEResult

    start = AIEResult(
        p.partial["aie"], p.partial["n_prompts"], p.partial["base_sum"] / p.partial["n_prompts"], p.partial["ie_sum"]
    )
    rest = run_to_end(fast_average_indirect_effect(tiny, corrupted, mean, 2, start=start))
    np.testing.assert_allclose(rest.aie, whole.aie, atol=1e-9)


@pytest.mark.parametrize("backend_name", ["tiny", "sparse", "bundled"])
def test_fast_layer_sweep_equals_the_plain_one(request, backend_name, scenes, scene_folder):
    backend = request.getfixturevalue(backend_name)
    tasks = _tasks(scenes, scene_folder, "zeroshot", n=5)
    v = torch.randn(backend.geometry.d_model, generator=torch.Generator().manual_seed(0))
    v = v * 30 / v.norm()
    plain = run_to_end(layer_sweep(backend, tasks, v, strengths=(1.0, 10.0), batch_size=4))
    fast = run_to_end(fast_layer_sweep(backend, tasks, v, strengths=(1.0, 10.0), batch_size=4, max_columns=9))
    assert fast.accuracy == plain.accuracy and fast.best == plain.best
    np.testing.assert_allclose(fast.mean_answer_prob, plain.mean_answer_prob, atol=1e-6)
    assert fast.baseline.predictions == plain.baseline.predictions
    assert fast.baseline.accuracy == plain.baseline.accuracy
    # the layers and strengths differ by far more than the tolerance: the comparison means something
    assert np.ptp(np.asarray(plain.mean_answer_prob)) > 1e-4


def test_the_attribution_preview_ranks_heads_like_the_exact_aie(tiny, scenes, scene_folder):
    clean = _tasks(scenes, scene_folder, "clean", n=4)
    corrupted = _tasks(scenes, scene_folder, "corrupted", n=4)
    mean = 30 * run_to_end(mean_head_activations(tiny, clean, 4)).mean
    exact = run_to_end(fast_average_indirect_effect(tiny, corrupted, mean, 4))
    preview = run_to_end(attribution_preview(tiny, corrupted, mean, 4))
    assert preview.aie.shape == exact.aie.shape
    assert rank_correlation(preview.aie, exact.aie) > 0.8
    assert preview.base_prob == pytest.approx(exact.base_prob, abs=1e-5)


def test_rank_correlation():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert rank_correlation(a, a * 10 + 1) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert rank_correlation(np.array([1.0, 1.0, 2.0]), np.array([5.0, 5.0, 9.0])) == pytest.approx(1.0)
