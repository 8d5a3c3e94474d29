"""The OpenFlamingo backend on a tiny model built offline: loading, batching, and the loader's errors."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mfv_desktop.backends import BackendError
from mfv_desktop.backends.openflamingo import OpenFlamingoBackend, OpenFlamingoFiles, unique_state_dict
from mfv_desktop.scenes import BASE_RELATIONS
from mfv_desktop.tasks import Shot, Task, TaskSpec, build_task_set


@pytest.fixture(scope="module")
def tasks(scenes, scene_folder):
    return build_task_set(scenes, scene_folder, TaskSpec(relations=BASE_RELATIONS, k=2, split="a")).tasks


def test_geometry_and_tokens(tiny):
    g = tiny.geometry
    assert (g.n_layers, g.n_heads, g.d_head, g.d_model) == (4, 4, 16, 64)
    assert g.cross_attn_layers == (0, 1, 2, 3)
    assert tiny.token_count("apple") == 1
    assert tiny.token_count("apple ball") == 2
    assert tiny.token_count("zebracorn") == 0  # unknown to the model
    assert tiny.decode_token(tiny.answer_token("apple")) == "apple"


def test_images_matter_with_gates_open(tiny, tasks):
    b = tiny.encode(tasks[:2])
    logits = tiny.run(b)
    b.inputs["vision_x"] = b.inputs["vision_x"].flip(0)  # swap the two prompts' images
    assert not torch.allclose(tiny.run(b), logits, atol=1e-4)


def _padded_tasks(tasks):
    """Same images, prompts of different token lengths (a two-token anchor), so batches are left-padded."""
    t = tasks[0]
    longer = Task(
        t.relation, t.kind, t.demos, Shot(t.query.scene_id, t.query.image, "apple ball", t.answer, t.relation)
    )
    return [t, longer, tasks[1], tasks[2]]


def test_batched_equals_one_at_a_time_with_left_padding(tiny, tasks):
    ts = _padded_tasks(tasks)
    batch = tiny.encode(ts)
    assert (batch.inputs["attention_mask"] == 0).any(), "the test needs padding"
    together = tiny.run(batch)
    alone = torch.cat([tiny.run(tiny.encode([t])) for t in ts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)


def test_with_all_gates_zero_flamingo_equals_the_plain_language_model(tiny_folder, tasks):
    from transformers import GPTNeoXForCausalLM

    b = OpenFlamingoBackend.from_folder(tiny_folder)
    with torch.no_grad():
        for g in b.model.lang_encoder.gated_cross_attn_layers:
            g.attn_gate.zero_()
            g.ff_gate.zero_()
    lm = b.model.lang_encoder
    plain = GPTNeoXForCausalLM(lm.config)
    sd = {
        k.replace(".decoder_layer.", "."): v
        for k, v in lm.state_dict().items()
        if not k.startswith(("old_decoder_blocks", "gated_cross_attn_layers")) and "gated_cross_attn_layer" not in k
    }
    missing, unexpected = plain.load_state_dict(sd, strict=False)
    assert not unexpected and not [k for k in missing if "rotary" not in k and "masked_bias" not in k]
    plain.eval()
    batch = b.encode(tasks[:3])
    flamingo = b.run(batch, all_positions=True)
    with torch.no_grad():
        x = batch.inputs
        ref = plain(
            input_ids=x["input_ids"], attention_mask=x["attention_mask"], position_ids=x["position_ids"]
        ).logits.float()
    mask = x["attention_mask"].bool()
    torch.testing.assert_close(flamingo[mask], ref[mask], atol=1e-5, rtol=1e-5)


def test_reload_gives_the_same_model(tiny_folder, tiny, tasks):
    again = OpenFlamingoBackend.from_folder(tiny_folder)
    torch.testing.assert_close(again.run(again.encode(tasks[:2])), tiny.run(tiny.encode(tasks[:2])))


# -- the loader's error paths ------------------------------------------------------------------------
def test_wrong_folder(tmp_path):
    with pytest.raises(BackendError, match="does not exist"):
        OpenFlamingoFiles.from_folder(tmp_path / "nowhere")
    with pytest.raises(BackendError, match="no mfv_model.json and no checkpoint.pt"):
        OpenFlamingoFiles.from_folder(tmp_path)


def test_missing_files_are_named(tiny_folder, tmp_path):
    for victim, message in [
        ("lm/config.json", "has no config.json"),
        ("lm/tokenizer.json", "no tokenizer"),
        ("lm/model.safetensors", "has no weights"),
        ("checkpoint.safetensors", "is missing"),
    ]:
        copy = tmp_path / victim.replace("/", "_")
        shutil.copytree(tiny_folder, copy)
        (copy / victim).unlink()
        with pytest.raises(BackendError, match=message) as e:
            OpenFlamingoFiles.from_folder(copy)
        assert str(copy) in str(e.value)


def test_openflamingo_4b_layout_is_discovered_and_its_pieces_named(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(BackendError, match="no language-model folder"):
        OpenFlamingoFiles.from_folder(tmp_path)
    lm = tmp_path / "RedPajama-INCITE-Instruct-3B-v1"
    lm.mkdir()
    for f in ("config.json", "tokenizer.json", "model.safetensors"):
        (lm / f).write_text("{}")
    with pytest.raises(BackendError, match="open_clip_pytorch_model.bin"):
        OpenFlamingoFiles.from_folder(tmp_path)
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "open_clip_pytorch_model.bin").write_bytes(b"")
    files = OpenFlamingoFiles.from_folder(tmp_path)
    assert files.clip_arch == "ViT-L-14-quickgelu"  # the QuickGELU tower OpenFlamingo was trained with
    assert files.cross_attn_every_n_layers == 2 and files.lm_dir == lm
    assert files.checkpoint == tmp_path / "checkpoint.pt"


def _small_model(tmp_path, name, **kw):
    from mfv_desktop.backends.small import SmallConfig, build_small_model

    return build_small_model(tmp_path / name, SmallConfig(**kw))


def test_checkpoint_of_the_wrong_shape(tiny_folder, tmp_path):
    other = _small_model(tmp_path, "narrow", d_model=32, n_heads=2)
    bad = tmp_path / "bad"
    shutil.copytree(tiny_folder, bad)
    shutil.copy(other / "checkpoint.safetensors", bad / "checkpoint.safetensors")
    with pytest.raises(BackendError, match="does not fit the model.*size mismatch"):
        OpenFlamingoBackend.from_folder(bad)


def test_corrupt_and_foreign_checkpoints(tiny_folder, tmp_path):
    bad = tmp_path / "corrupt"
    shutil.copytree(tiny_folder, bad)
    (bad / "checkpoint.safetensors").write_bytes(b"not a checkpoint at all")
    with pytest.raises(BackendError, match="cannot read checkpoint"):
        OpenFlamingoBackend.from_folder(bad)
    from safetensors.torch import load_file, save_file

    extra = tmp_path / "extra"
    shutil.copytree(tiny_folder, extra)
    sd = load_file(str(extra / "checkpoint.safetensors"))
    sd["lang_encoder.embed_out_renamed.weight"] = torch.zeros(3)
    save_file(sd, str(extra / "checkpoint.safetensors"))
    with pytest.raises(BackendError, match="keys the model does not know"):
        OpenFlamingoBackend.from_folder(extra)


def test_partial_torch_checkpoint_loads_with_weights_only(tiny_folder, tiny, tmp_path, tasks):
    """Like OpenFlamingo-4B's checkpoint.pt: only the Flamingo weights, the LM and vision from their own files."""
    folder = tmp_path / "partial"
    shutil.copytree(tiny_folder, folder)
    sd = unique_state_dict(tiny.model)
    torch.save(
        {k: v for k, v in sd.items() if k.startswith("perceiver.") or "gated_cross_attn" in k}, folder / "checkpoint.pt"
    )
    m = json.loads((folder / "mfv_model.json").read_text())
    m.update(checkpoint="checkpoint.pt", checkpoint_complete=False)
    (folder / "mfv_model.json").write_text(json.dumps(m))
    b = OpenFlamingoBackend.from_folder(folder)
    for name, p in b.model.perceiver.named_parameters():
        torch.testing.assert_close(p, dict(tiny.model.perceiver.named_parameters())[name])
    torch.save({"perceiver.latents": sd["perceiver.latents"]}, folder / "checkpoint.pt")
    with pytest.raises(BackendError, match="lacks .* weights the model needs"):
        OpenFlamingoBackend.from_folder(folder)


def test_bf16_runs_and_stays_close_to_fp32(tiny_folder, tiny, tasks):
    half = OpenFlamingoBackend.from_folder(tiny_folder, dtype="bf16")
    assert half.dtype == torch.bfloat16 and next(half.model.parameters()).dtype == torch.bfloat16
    p16 = half.run(half.encode(tasks[:3])).softmax(-1)
    p32 = tiny.run(tiny.encode(tasks[:3])).softmax(-1)
    assert (p16 - p32).abs().max() < 0.05


def test_one_model_is_resident_at_a_time(monkeypatch):
    """A switch in the model manager lets the previous model go (two never share a GPU)."""
    import gc
    import weakref

    from mfv_desktop.backends import loading

    monkeypatch.setattr(loading, "_LOADED", {})
    first = loading.load_backend("tiny")
    assert loading.load_backend("tiny") is first  # asked again: the same one
    gone = weakref.ref(first)
    del first
    second = loading.load_backend("tiny:1")
    gc.collect()
    assert list(loading._LOADED) == [("tiny:1", "cpu", "fp32")] and gone() is None
    assert second.family == "openflamingo" and second.provenance()["family"] == "openflamingo"


def test_a_vector_of_another_family_is_refused_by_its_hook_point(tiny):
    from mfv_desktop.fv.vector_file import FunctionVector

    g = tiny.geometry
    fv = FunctionVector(
        torch.ones(g.d_model),
        "x",
        "above",
        tiny.model_id,
        g.d_model,
        g.n_layers,
        1,
        [(1, 0)],
        hook_point=tiny.hook_point,
    )
    fv.check_fits(tiny)
    other = FunctionVector(**{**fv.__dict__, "hook_point": "otherfamily:residual:decoder_layer_output:last_token"})
    with pytest.raises(BackendError, match="another model family"):
        other.check_fits(tiny)
