"""Small OpenFlamingo models built offline from the real open_flamingo classes.

A word-level tokenizer whose object names are single tokens, a GPT-NeoX language model, an
open_clip ViT from a JSON config, the perceiver and gated cross-attention of open_flamingo. Gates
are opened (they start at 0, which would make the model ignore its images). Seeded: the same
config gives the same weights. The folder written loads through the same code as OpenFlamingo-4B.

With the default config this is the *tiny* random model (for tests and for trying the chain
without model files; built in about a second); the bundled model starts from a larger config and
is then trained (training/bundled.py, outside the package).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .openflamingo import MANIFEST, OpenFlamingoFiles, load_flamingo, unique_state_dict

PROMPT_WORDS = ("Q", "A", ":", ".", ",", "the", "is", "of", "what", "image")


@dataclass(frozen=True)
class SmallConfig:
    seed: int = 0
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 64
    cross_attn_every_n_layers: int = 1
    image_size: int = 64
    patch_size: int = 16
    vision_width: int = 64
    vision_layers: int = 2
    #: value of every cross-attention gate parameter (open: tanh(1) = 0.76 of the block passes)
    gate: float = 1.0
    rotary_pct: float = 0.25
    #: GPT-NeoX's x + attn(ln1(x)) + mlp(ln2(x)) (Pythia) or attention then MLP in turn
    parallel_residual: bool = True
    #: PerceiverResampler arguments (empty: open_flamingo's defaults, 6 layers x 64 latents)
    perceiver: tuple[tuple[str, int], ...] = ()
    #: GatedCrossAttentionBlock arguments (empty: open_flamingo's defaults, 8 heads x 64)
    cross_attn: tuple[tuple[str, int], ...] = ()
    #: an open_clip architecture to use instead of the small ViT above (the paper's ViT-L-14-quickgelu)
    clip_arch: str = ""


def small_vocabulary(extra: Iterable[str] = ()) -> list[str]:
    from mfv_desktop.scenes.model import SPATIAL_RELATIONS
    from mfv_desktop.scenes.objects import KINDS

    words = ["<|endoftext|>", "<unk>", *PROMPT_WORDS, *KINDS, *SPATIAL_RELATIONS, *extra]
    return list(dict.fromkeys(words))


def save_word_tokenizer(folder: Path, vocab: list[str], specials: Iterable[str] = ()) -> None:
    """A word-level tokenizer of `vocab`; `specials` (words of `vocab`) are whole tokens anywhere in a text."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<unk>",
        additional_special_tokens=list(specials),
    )
    fast.save_pretrained(str(folder))


def build_small_model(
    folder: str | Path,
    config: SmallConfig = SmallConfig(),
    model_id: str | None = None,
    vocab: list[str] | None = None,
    weights: bool = True,
) -> Path:
    """Write a small OpenFlamingo model folder (mfv_model.json + lm/ + vision config + checkpoint).
    `weights=False` writes configs and tokenizer alone, for a backend built with random_weights on its
    device (a model at the paper's full size is never allocated here)."""
    from safetensors.torch import save_file
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    folder = Path(folder)
    lm = folder / "lm"
    lm.mkdir(parents=True, exist_ok=True)
    vocab = vocab or small_vocabulary()
    save_word_tokenizer(lm, vocab)
    torch.manual_seed(config.seed)
    cfg = GPTNeoXConfig(
        vocab_size=len(vocab),
        hidden_size=config.d_model,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        intermediate_size=4 * config.d_model,
        max_position_embeddings=1024,
        rotary_pct=config.rotary_pct,
        use_parallel_residual=config.parallel_residual,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    if weights:
        GPTNeoXForCausalLM(cfg).save_pretrained(str(lm), safe_serialization=True)
    else:
        cfg.save_pretrained(str(lm))
    clip_name = config.clip_arch or f"mfv-tiny-vit-{config.vision_width}x{config.vision_layers}-{config.image_size}"
    clip_cfg = {
        "embed_dim": config.vision_width,
        "quick_gelu": True,
        "vision_cfg": {
            "image_size": config.image_size,
            "layers": config.vision_layers,
            "width": config.vision_width,
            "patch_size": config.patch_size,
            "head_width": max(config.vision_width // 4, 8),
        },
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
    }
    if not config.clip_arch:
        (folder / f"{clip_name}.json").write_text(json.dumps(clip_cfg, indent=1))
    manifest = {
        "format": "mfv-openflamingo/1",
        "model_id": model_id or f"tiny-openflamingo-s{config.seed}",
        "lm": "lm",
        "clip": clip_name,
        "clip_config": None if config.clip_arch else f"{clip_name}.json",
        "clip_weights": None,
        "checkpoint": None,
        "cross_attn_every_n_layers": config.cross_attn_every_n_layers,
        "checkpoint_complete": True,
        "perceiver": dict(config.perceiver),
        "cross_attn": dict(config.cross_attn),
        "small_config": asdict(config),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    if not weights:
        return folder
    torch.manual_seed(config.seed + 1)
    model, _, _ = load_flamingo(OpenFlamingoFiles.from_folder(folder))
    with torch.no_grad():
        for g in model.lang_encoder.gated_cross_attn_layers:
            if g is not None:
                g.attn_gate.fill_(config.gate)
                g.ff_gate.fill_(config.gate)
    save_file({k: v.contiguous() for k, v in unique_state_dict(model).items()}, str(folder / "checkpoint.safetensors"))
    manifest["checkpoint"] = "checkpoint.safetensors"
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return folder


def build_tiny(folder: str | Path, seed: int) -> Path:
    """The tiny random OpenFlamingo of the registry (`--model tiny:SEED`)."""
    return build_small_model(folder, SmallConfig(seed=seed))
