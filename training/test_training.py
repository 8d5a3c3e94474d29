"""The bundled model's training (training/bundled.py), on tiny sizes: prompts as the backend writes them,
configs that load, a run that is reproducible, resumes and exports a folder the backend loads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mfv_desktop.backends.openflamingo import OpenFlamingoBackend, OpenFlamingoFiles
from mfv_desktop.backends.small import SmallConfig, build_small_model
from mfv_desktop.progress import run_to_end
from mfv_desktop.scenes import KINDS
from mfv_desktop.tasks import OPENFLAMINGO_TEMPLATE, Shot, Task
from training.bundled import BASE, Sampler, vocabulary

#: CI runs these with everything else (`pytest -q` from the checkout; testpaths in pyproject.toml);
#: `-m "not slow"` leaves them out. A few minutes on 2 cores, mostly the tiny training run.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

SMALL = SmallConfig(
    n_layers=2,
    n_heads=2,
    d_model=32,
    image_size=32,
    patch_size=8,
    vision_width=32,
    perceiver=(("depth", 1), ("dim_head", 8), ("heads", 2), ("num_latents", 16)),
    cross_attn=(("dim_head", 8), ("heads", 2)),
)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    folder = build_small_model(tmp_path_factory.mktemp("small"), SMALL, vocab=vocabulary())
    return OpenFlamingoBackend.from_folder(folder)


def test_custom_perceiver_and_cross_attention_sizes_load(small):
    m = small.model
    assert m.perceiver.latents.shape == (16, 32) and len(m.perceiver.layers) == 1
    xattn = m.lang_encoder.gated_cross_attn_layers[0]
    assert xattn.attn.heads == 2 and xattn.attn.to_q.out_features == 16
    # the decoder layers use the new blocks, not open_flamingo's default ones
    assert m.lang_encoder.gpt_neox.layers[0].gated_cross_attn_layer is xattn
    again = OpenFlamingoBackend.from_folder(small.files.folder)
    torch.testing.assert_close(again.model.perceiver.latents, m.perceiver.latents)
    assert OpenFlamingoFiles.from_folder(small.files.folder).cross_attn == (("dim_head", 8), ("heads", 2))


def test_training_prompts_are_token_for_token_what_the_backend_encodes(small):
    objects = np.array([[1 + i, 2 + i, 3 + i, 4 + i, 5 + i, 6 + i] for i in range(10)], dtype=np.int16)
    sampler = Sampler(small.tokenizer, objects, list(KINDS), seed=0, max_k=8)
    toks, answers, scenes, info = sampler.sample("paper", k=3)
    names = lambda s, r: (KINDS[objects[s][0] - 1], KINDS[objects[s][1 + r] - 1])  # noqa: E731
    r = next(r for r in range(4) if names(scenes[-1], r)[1] == small.tokenizer.decode([toks[-1]]))
    shots = [Shot(str(s), "x.png", *names(s, r), BASE[r]) for s in scenes]
    task = Task(BASE[r], "clean", tuple(shots[:-1]), shots[-1])
    ids = small.tokenizer(OPENFLAMINGO_TEMPLATE.render(task), add_special_tokens=False)["input_ids"]
    assert toks[:-1] == ids and toks[-1] == small.answer_token(task.answer)
    assert answers[-1] == len(toks) - 1 and info["query"] == [len(toks) - 1] and len(answers) == 4
    assert len(set(scenes)) == 4


def test_mixed_batches_keep_one_k_and_mark_answers(small):
    objects = np.tile(np.arange(1, 7, dtype=np.int16), (20, 1))
    sampler = Sampler(small.tokenizer, objects, list(KINDS), seed=1, max_k=8)
    b = sampler.batch({"named": 0.5, "paper": 0.5}, 16, k=2)
    assert set(b["kinds"]) == {"named", "paper"}
    assert all(k in (2, -1) for k in b["k"])
    # every labelled position holds its own token and is an answer
    assert torch.equal(b["labels"][b["labels"] != -100], b["ids"][b["labels"] != -100])
    assert b["scenes"].shape[1] == 4  # named rows carry four images, paper rows K + 1 = 3


def _tiny_run_config(**kw):
    from training.bundled import BundledConfig

    return BundledConfig(
        arch=SMALL, pool_train=24, pool_novel=8, pool_val=8, vision_steps=3, batch=4, max_prompts=24, eval_every=3, **kw
    )


def test_training_is_reproducible_and_resumes(tmp_path):
    from training.bundled import export, train

    cfg = _tiny_run_config()
    a = run_to_end(train(tmp_path / "a", cfg))
    b = run_to_end(train(tmp_path / "b", cfg))
    assert a.prompts == b.prompts == 24 and a.step == 6
    assert [h.get("loss") for h in a.history] == [h.get("loss") for h in b.history]
    sa = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    sb = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # a larger budget continues from the checkpoint instead of starting over
    from dataclasses import replace

    c = run_to_end(train(tmp_path / "a", replace(cfg, max_prompts=32)))
    assert c.prompts == 32 and c.step == 8
    out = export(tmp_path / "a", tmp_path / "exported")
    backend = OpenFlamingoBackend.from_folder(out)
    assert backend.model_id == "mfv-bundled-openflamingo"
    trained = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    torch.testing.assert_close(backend.model.perceiver.latents, trained["perceiver.latents"].half().float())


def test_the_command_line_trains_resumes_and_exports_as_train_bundled_did(monkeypatch, tmp_path, capsys):
    """`python -m training` passes its options on as `mfv train-bundled` did (the training itself is above)."""
    import json

    import training.__main__ as cli
    import training.bundled as bundled
    from mfv_desktop.progress import Progress

    calls = {}

    def train(work, cfg, max_seconds, init_from):
        calls["train"] = (str(work), cfg.seed, cfg.max_prompts, max_seconds, init_from)
        yield Progress(1, 2, "stage 0")
        return bundled.TrainState(step=3, prompts=96, stage=1, seconds=5.0, history=[{"loss": 1.5}])

    monkeypatch.setattr(bundled, "train", train)
    monkeypatch.setattr(bundled, "export", lambda work, out: calls.setdefault("export", (str(work), str(out))))
    work, out = tmp_path / "w", tmp_path / "out"
    assert (
        cli.main(
            [
                "--work",
                str(work),
                "--minutes",
                "2",
                "--max-prompts",
                "96",
                "--seed",
                "3",
                "--export",
                str(out),
                "--init-from",
                "resources/bundled",
            ]
        )
        == 0
    )
    assert calls == {"train": (str(work), 3, 96, 120.0, "resources/bundled"), "export": (str(work), str(out))}
    result = json.loads(capsys.readouterr().out)
    assert result == {"prompts": 96, "stage": 1, "seconds": 5, "last_eval": {"loss": 1.5}, "exported": str(out)}
