"""The Qwen3-VL backend on a tiny random Qwen3-VL built offline (`--model tiny-qwen3vl`): geometry with
grouped-query attention, prompts in Qwen's image tokens, left padding, and the chain through the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mfv_desktop.backends import BackendError
from mfv_desktop.cli import main
from mfv_desktop.scenes import BASE_RELATIONS, resolve_image
from mfv_desktop.tasks import Shot, Task, TaskSpec, build_task_set


@pytest.fixture(scope="module")
def qwen_folder():
    from mfv_desktop.backends.loading import model_folder

    torch.set_num_threads(1)  # a tiny model runs fastest on one thread (several times faster on a busy CPU)
    return model_folder("tiny-qwen3vl")


@pytest.fixture(scope="module")
def qwen(qwen_folder):
    from mfv_desktop.backends.qwen3vl import Qwen3VLBackend

    return Qwen3VLBackend.from_folder(qwen_folder)


@pytest.fixture(scope="module")
def tasks(scenes, scene_folder):
    return build_task_set(scenes, scene_folder, TaskSpec(relations=BASE_RELATIONS, k=2, split="a")).tasks


def test_the_registry_knows_the_folder_and_the_tiny_reference(qwen_folder):
    from mfv_desktop.backends.registry import family_of

    assert family_of("tiny-qwen3vl").name == family_of("tiny-qwen3vl:3").name == "qwen3vl"
    assert family_of(str(qwen_folder)).name == "qwen3vl"
    assert json.loads((qwen_folder / "config.json").read_text())["model_type"] == "qwen3_vl"


def test_geometry_counts_query_heads_with_grouped_query_attention(qwen):
    g = qwen.geometry
    cfg = qwen.model.config.text_config
    assert cfg.num_key_value_heads < cfg.num_attention_heads  # the tiny model has GQA, as the 4B
    assert (g.n_layers, g.n_heads, g.d_head, g.d_model) == (4, 4, 32, 64)
    assert g.n_heads * g.d_head != g.d_model  # o_proj maps 128 -> 64, like 4096 -> 2560 in the 4B
    assert qwen.family == "qwen3vl" and qwen.supports_last_position is True


def test_head_site_input_is_query_heads_times_head_dim(qwen, tasks):
    seen = []
    handle = qwen.head_site(2).register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape))
    try:
        with torch.no_grad():
            qwen.run(qwen.encode(tasks[:3]))
    finally:
        handle.remove()
    batch, _, width = seen[0]
    assert (batch, width) == (3, qwen.geometry.n_heads * qwen.geometry.d_head)
    assert qwen.head_site(2).weight.shape == (qwen.geometry.d_model, width)


def test_answer_tokens_and_the_prompt_in_qwen_image_tokens(qwen, tasks):
    assert qwen.token_count("apple") == 1
    assert qwen.token_count("apple ball") == 2
    assert qwen.token_count("zebracorn") == 0
    assert qwen.decode_token(qwen.answer_token("apple")) == "apple"
    with pytest.raises(BackendError, match="zebracorn"):
        qwen.answer_token("zebracorn")
    t = tasks[0]
    text = qwen.render(t)
    image = "<|vision_start|>" + "<|image_pad|>" * qwen.image_tokens + "<|vision_end|>"
    assert text.count(image) == len(t.images) == 3 and text.endswith(f"Q: {t.query.anchor}. A:")
    assert f"A: {t.demos[0].answer}." in text
    batch = qwen.encode([t])
    assert int(batch.answer_ids[0]) == qwen.answer_token(t.answer)
    assert batch.inputs["image_grid_thw"].tolist() == [[1, 4, 4]] * 3  # every image the same size
    prov = qwen.provenance()
    assert prov["family"] == "qwen3vl" and prov["template"] == qwen.template.id
    assert prov["images"]["min_pixels"] == prov["images"]["max_pixels"] == 64 * 64
    assert len(prov["files"]["model.safetensors"]) == 64  # the weights' sha256, not their size


def test_image_size_is_the_folders_square_or_448():
    from mfv_desktop.backends.qwen3vl import image_side

    qwen3vl_4b = {"size": {"longest_edge": 16777216, "shortest_edge": 65536}, "patch_size": 16, "merge_size": 2}
    assert image_side(qwen3vl_4b) == 448  # the download's bounds differ: one fixed square instead
    assert (
        image_side({**qwen3vl_4b, "size": {"longest_edge": 262144, "shortest_edge": 262144}, "max_pixels": None}) == 512
    )
    assert image_side({**qwen3vl_4b, "min_pixels": 500 * 500, "max_pixels": 500 * 500}) == 448  # not whole patches


def test_images_matter(qwen, tasks):
    b = qwen.encode(tasks[:2])
    with torch.no_grad():
        logits = qwen.run(b)
        pv = b.inputs["pixel_values"]
        half = len(pv) // 2  # the first prompt's images, then the second's
        b.inputs["pixel_values"] = torch.cat([pv[half:], pv[:half]])  # swap the two prompts' images
        swapped = qwen.run(b)
    assert not torch.allclose(swapped, logits, atol=1e-3)


def test_batched_equals_one_at_a_time_with_left_padding(qwen, tasks):
    ts = _padded(tasks)
    batch = qwen.encode(ts)
    assert (batch.inputs["attention_mask"] == 0).any(), "the test needs padding"
    with torch.no_grad():
        together = qwen.run(batch)
        alone = torch.cat([qwen.run(qwen.encode([x])) for x in ts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def _padded(tasks):
    """Prompts of different token lengths (a two-token anchor), so the batch is left-padded."""
    t, q = tasks[0], tasks[0].query
    return [
        t,
        Task(t.relation, t.kind, t.demos, Shot(q.scene_id, q.image, "apple ball", t.answer, t.relation)),
        *tasks[1:3],
    ]


def test_the_last_position_alone_equals_full_forward_passes(qwen, tasks):
    from mfv_desktop.fv import add_vector, patch_heads

    g = qwen.geometry
    batch = qwen.encode(_padded(tasks))
    assert (batch.inputs["attention_mask"] == 0).any()
    gen = torch.Generator().manual_seed(0)
    values = torch.randn(g.n_layers, g.n_heads, g.d_head, generator=gen) * 3
    vector = torch.randn(g.d_model, generator=gen) * 3
    layers = torch.arange(g.n_layers).repeat_interleave(g.n_heads)
    heads = torch.arange(g.n_heads).repeat(g.n_layers)
    with torch.no_grad():
        last = qwen.last_position(batch)
        torch.testing.assert_close(last.base_logits, qwen.run(batch), atol=1e-5, rtol=1e-5)
        fast = last.patched_heads(layers, heads, values[layers, heads])
        added = last.added(torch.arange(g.n_layers), torch.ones(g.n_layers), vector)
        for c, (layer, head) in enumerate(zip(layers.tolist(), heads.tolist())):
            with patch_heads(qwen, {layer: [(head, values[layer, head])]}):
                torch.testing.assert_close(fast[:, c], qwen.run(batch), atol=1e-5, rtol=1e-5)
        for layer in range(g.n_layers):
            with add_vector(qwen, layer, vector):
                torch.testing.assert_close(added[:, layer], qwen.run(batch), atol=1e-5, rtol=1e-5)
    assert (fast - last.base_logits[:, None]).abs().max() > 1e-3  # the patches change the answer's odds


def test_fast_layer_sweep_equals_the_plain_one(qwen, scenes, scene_folder):
    import numpy as np

    from mfv_desktop.fv import layer_sweep
    from mfv_desktop.fv.fast import fast_layer_sweep
    from mfv_desktop.progress import run_to_end

    zeroshot = build_task_set(
        scenes, scene_folder, TaskSpec(relations=("above", "left"), kind="zeroshot", split="a", max_per_relation=3)
    ).tasks
    v = torch.randn(qwen.geometry.d_model, generator=torch.Generator().manual_seed(0)) * 3
    plain = run_to_end(layer_sweep(qwen, zeroshot, v, strengths=(1.0, 4.0), batch_size=4))
    fast = run_to_end(fast_layer_sweep(qwen, zeroshot, v, strengths=(1.0, 4.0), batch_size=4, max_columns=3))
    assert fast.accuracy == plain.accuracy and fast.baseline.predictions == plain.baseline.predictions
    np.testing.assert_allclose(fast.mean_answer_prob, plain.mean_answer_prob, atol=1e-6)
    assert np.ptp(np.asarray(plain.mean_answer_prob)) > 1e-4


def test_a_folder_missing_a_file_is_named(qwen_folder, tmp_path):
    from mfv_desktop.backends.qwen3vl import Qwen3VLBackend

    broken = tmp_path / "qwen"
    shutil.copytree(qwen_folder, broken)
    (broken / "preprocessor_config.json").unlink()
    with pytest.raises(BackendError, match="preprocessor_config.json"):
        Qwen3VLBackend.check_files(broken)
    shard = "model-00002-of-00002.safetensors"
    (broken / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"lm_head.weight": shard}}))
    with pytest.raises(BackendError, match=shard):
        Qwen3VLBackend.check_files(broken)
    assert Qwen3VLBackend.check_files(qwen_folder)["model_id"] == qwen_folder.name


def test_a_damaged_weight_file_is_named_not_a_traceback(qwen_folder, tmp_path):
    from mfv_desktop.backends.qwen3vl import Qwen3VLBackend

    broken = tmp_path / "qwen"
    shutil.copytree(qwen_folder, broken)
    with open(broken / "model.safetensors", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(BackendError, match="completely downloaded"):
        Qwen3VLBackend.from_folder(broken)


def test_bf16_loads_and_runs_near_fp32(qwen_folder, qwen, tasks):
    from mfv_desktop.backends.qwen3vl import Qwen3VLBackend

    half = Qwen3VLBackend.from_folder(qwen_folder, dtype="bf16")
    assert half.model.dtype == torch.bfloat16 and half.provenance()["dtype"] == "bfloat16"
    with torch.no_grad():
        low, full = half.run(half.encode(tasks[:2])), qwen.run(qwen.encode(tasks[:2]))
    assert low.dtype == torch.float32
    torch.testing.assert_close(low.softmax(-1), full.softmax(-1), atol=0.02, rtol=0)


def _aie(scene_folder, out, *extra):
    return main(
        [
            "-q",
            "aie",
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
            "--out",
            str(out),
            "--model",
            "tiny-qwen3vl",
            *extra,
        ]
    )


def test_aie_extract_and_apply_run_through_the_cli(tmp_path, scene_folder, scenes, capsys):
    from safetensors.numpy import load_file

    from mfv_desktop.fv.vector_file import FunctionVector

    assert _aie(scene_folder, tmp_path / "ref", "--method", "reference") == 0
    assert _aie(scene_folder, tmp_path / "fast") == 0  # the default: the last position alone
    ref, fast = (load_file(str(tmp_path / m / "above" / "aie.safetensors"))["aie"] for m in ("ref", "fast"))
    assert ref.shape == (4, 4) and abs(ref - fast).max() <= 1e-5 and abs(ref).max() > 1e-4
    assert json.loads((tmp_path / "fast" / "above" / "aie.json").read_text())["method"] == "fast"
    meta = json.loads((tmp_path / "ref" / "above" / "aie.json").read_text())
    assert meta["provenance"]["family"] == "qwen3vl"
    assert (
        main(
            [
                "-q",
                "extract",
                "--aie",
                str(tmp_path / "ref"),
                "--relation",
                "above",
                "--top-k",
                "3",
                "--out",
                str(tmp_path / "v.safetensors"),
                "--model",
                "tiny-qwen3vl",
            ]
        )
        == 0
    )
    fv = FunctionVector.load(tmp_path / "v.safetensors")
    assert fv.provenance["family"] == "qwen3vl" and len(fv.heads) == 3
    capsys.readouterr()
    image = str(resolve_image(scene_folder, scenes[0]))
    assert (
        main(
            [
                "-q",
                "apply",
                "--image",
                image,
                "--anchor",
                "apple",
                "--vectors",
                str(tmp_path / "v.safetensors"),
                "--out",
                str(tmp_path / "apply"),
                "--model",
                "tiny-qwen3vl",
            ]
        )
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["bars"] and any(b["with"] != b["without"] for b in shown["bars"])


def test_a_vector_made_on_openflamingo_is_refused_naming_both(tmp_path, tiny, qwen, scene_folder, scenes, capsys):
    from mfv_desktop.fv.vector_file import FunctionVector

    g = tiny.geometry
    FunctionVector(
        torch.ones(g.d_model),
        "of vector",
        "above",
        tiny.model_id,
        g.d_model,
        g.n_layers,
        1,
        [(1, 0)],
        hook_point=tiny.hook_point,
    ).save(tmp_path / "of.safetensors")
    capsys.readouterr()
    assert (
        main(
            [
                "-q",
                "apply",
                "--image",
                str(resolve_image(scene_folder, scenes[0])),
                "--anchor",
                "apple",
                "--vectors",
                str(tmp_path / "of.safetensors"),
                "--out",
                str(tmp_path / "apply"),
                "--model",
                "tiny-qwen3vl",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert tiny.model_id in err and qwen.model_id in err
