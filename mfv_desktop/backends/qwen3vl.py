"""Qwen3-VL behind the backend protocol, with the `transformers` classes (Qwen3VLForConditionalGeneration).

Loads a local folder in the Hugging Face layout fully offline: config.json (model_type qwen3_vl),
model*.safetensors (one file, or shards listed in model.safetensors.index.json), the tokenizer
(tokenizer.json + tokenizer_config.json) and preprocessor_config.json.

Prompts are raw text, not the chat template: the paper's OpenFlamingo prompt with Qwen's image
tokens, `<|vision_start|><|image_pad|>...<|vision_end|>Q: {anchor}. A: {answer}.` per demonstration,
then the query image and `Q: {anchor}. A:`. The answer's first token is then the next token of the
prompt (a word with its leading space for Qwen's tokenizer), with nothing of a chat turn around it.
Every image is resized to one square size (min_pixels = max_pixels), so every image takes the same
number of image tokens; the size is the folder's when its preprocessor fixes one, else 448 x 448.
Positions are left to the model: Qwen3-VL computes its multimodal rotary positions from input_ids,
image_grid_thw and the attention mask, so a left-padded batch gives the logits of its prompts alone.
The fast path (Qwen3VLLastPosition) recomputes the last position alone, as for OpenFlamingo.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mfv_desktop.tasks import PromptTemplate, Task

from .base import (
    Backend,
    BackendError,
    Batch,
    Geometry,
    ImageCache,
    TokenizerAnswers,
    resolve_device,
    resolve_dtype,
)
from .last_position import LastPosition, _Layer, _rotate_half
from .registry import FAMILIES

HINT = FAMILIES["qwen3vl"].hint
IMAGE = "<image>"
VISION_START, VISION_END, IMAGE_PAD = "<|vision_start|>", "<|vision_end|>", "<|image_pad|>"
#: the side of the square every image is resized to when the folder's preprocessor does not fix one
DEFAULT_SIDE = 448

#: the paper's prompt (method.md §1) in raw text; IMAGE stands for one image's Qwen tokens
QWEN3VL_TEMPLATE = PromptTemplate(
    id="qwen3vl-raw-qa/1",
    demo=IMAGE + "Q: {anchor}. A: {answer}.\n",
    query=IMAGE + "Q: {anchor}. A:",
    image_token=IMAGE,
)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BackendError(f"{path} cannot be read as JSON ({e}); download it again. {HINT}.") from e
    if not isinstance(data, dict):
        raise BackendError(f"{path} is not a JSON object; download it again. {HINT}.")
    return data


def weight_files(folder: Path) -> list[Path]:
    """The safetensors files of a folder; BackendError names a shard the index lists but is missing."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(_json(index).get("weight_map", {}).values()))
        if not shards:
            raise BackendError(f"{index} lists no weight files; download it again. {HINT}.")
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            raise BackendError(
                f"{folder} lacks weight shard {missing[0]} ({len(missing)} of {len(shards)} missing) "
                f"that {index.name} lists: finish the download into this folder"
            )
        return [folder / s for s in shards]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise BackendError(
            f"{folder} has no weights (model.safetensors, or shards with model.safetensors.index.json). {HINT}."
        )
    return files


def image_side(preprocessor: dict[str, Any]) -> int:
    """The square side images are resized to: the folder's when min_pixels = max_pixels is a square
    of whole merged patches, else DEFAULT_SIDE."""
    size = preprocessor.get("size") or {}
    lo = preprocessor.get("min_pixels") or size.get("shortest_edge")
    hi = preprocessor.get("max_pixels") or size.get("longest_edge")
    unit = int(preprocessor.get("patch_size", 16)) * int(preprocessor.get("merge_size", 2))
    side = math.isqrt(int(hi)) if isinstance(hi, int) and hi > 0 else 0
    if lo == hi and side * side == hi and side % unit == 0:
        return side
    return DEFAULT_SIDE


def check_folder(folder: str | Path, weights: bool = True) -> dict[str, Any]:
    """The folder's files, checked without loading; BackendError names the missing file and the fix.
    `weights=False`: a folder of config and tokenizer files only (random weights, benchmarks/gpu.py)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise BackendError(f"model folder {folder} does not exist. {HINT}.")
    config = folder / "config.json"
    if not config.is_file():
        raise BackendError(f"{folder} has no config.json. {HINT}.")
    model_type = _json(config).get("model_type")
    if model_type != "qwen3_vl":
        raise BackendError(f"{config} describes a {model_type!r} model, not Qwen3-VL (model_type 'qwen3_vl'). {HINT}.")
    files = weight_files(folder) if weights else []
    for name, what in (
        ("tokenizer.json", "the tokenizer"),
        ("tokenizer_config.json", "the tokenizer's settings"),
        ("preprocessor_config.json", "the image preprocessor's settings"),
    ):
        if not (folder / name).is_file():
            raise BackendError(f"{folder} has no {name} ({what}): copy it from the model's download. {HINT}.")
    return {
        "model_id": folder.name,
        "files": {
            "config": str(config),
            "weights": ", ".join(p.name for p in files) or "random",
            "tokenizer": str(folder / "tokenizer.json"),
            "preprocessor": str(folder / "preprocessor_config.json"),
        },
    }


class Qwen3VLBackend(TokenizerAnswers, Backend):
    family = "qwen3vl"
    hook_point = "residual:qwen3vl_text_layer_output:last_token"
    template = QWEN3VL_TEMPLATE
    supports_last_position = True

    def __init__(
        self,
        folder: str | Path,
        device: str | None = "cpu",
        dtype: str = "fp32",
        image_cache_size: int = 1024,
        random_weights: bool = False,
    ) -> None:
        """`random_weights`: build the folder's config with random weights directly on the device, in its
        dtype (nothing allocated on the CPU first; the folder needs no weights): benchmarks/gpu.py."""
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before the hub library reads it
        from transformers import AutoConfig, AutoTokenizer, Qwen2VLImageProcessor, Qwen3VLForConditionalGeneration

        self.folder = Path(folder).expanduser()
        self.model_id = check_folder(self.folder, weights=not random_weights)["model_id"]
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.random_weights = random_weights
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
            if random_weights:
                config = AutoConfig.from_pretrained(str(self.folder), local_files_only=True)
                with self.device:
                    model = Qwen3VLForConditionalGeneration._from_config(
                        config, dtype=self.dtype, attn_implementation="sdpa"
                    )
            else:
                model = Qwen3VLForConditionalGeneration.from_pretrained(
                    str(self.folder), local_files_only=True, dtype=self.dtype, attn_implementation="sdpa"
                )
        except Exception as e:  # noqa: BLE001 - any failure to read the files is the folder's fault
            raise BackendError(
                f"cannot load Qwen3-VL from {self.folder} ({type(e).__name__}: {e}); is every file "
                f"completely downloaded? {HINT}."
            ) from e
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        for token in (VISION_START, VISION_END, IMAGE_PAD):
            if self.tokenizer.convert_tokens_to_ids(token) in (None, self.tokenizer.unk_token_id):
                raise BackendError(f"the tokenizer in {self.folder} has no {token} token: it is not Qwen3-VL's")
        pre = _json(self.folder / "preprocessor_config.json")
        self.side = image_side(pre)
        self.image_processor = Qwen2VLImageProcessor(
            patch_size=pre.get("patch_size", 16),
            temporal_patch_size=pre.get("temporal_patch_size", 2),
            merge_size=pre.get("merge_size", 2),
            image_mean=pre.get("image_mean"),
            image_std=pre.get("image_std"),
            min_pixels=self.side * self.side,
            max_pixels=self.side * self.side,
        )
        self.model = model.to(self.device).eval()
        self.model.requires_grad_(False)
        cfg = self.model.config.text_config
        self.geometry = Geometry(
            n_layers=cfg.num_hidden_layers,
            n_heads=cfg.num_attention_heads,
            d_head=getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
            d_model=cfg.hidden_size,
            vocab_size=self.model.get_output_embeddings().weight.shape[0],
        )
        self._layers = self.model.model.language_model.layers
        self._images = ImageCache(self._prepare_image, image_cache_size)

    @classmethod
    def from_folder(cls, folder: str | Path, **kw: Any) -> Qwen3VLBackend:
        return cls(folder, **kw)

    @staticmethod
    def check_files(folder: str | Path) -> dict[str, Any]:
        """The model's id and its files, checked without loading (BackendError names what is missing)."""
        return check_folder(folder)

    # -- protocol --------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        import transformers

        from .filehash import fingerprint

        names = (
            "config.json",
            "preprocessor_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model.safetensors.index.json",
        )
        files = fingerprint(
            self.folder,
            [
                *(p for p in (self.folder / n for n in names) if p.is_file()),
                *([] if self.random_weights else weight_files(self.folder)),
            ],
        )
        return {
            "model_id": self.model_id,
            "family": self.family,
            "model_folder": str(self.folder),
            "files": files,
            **({"weights": "random"} if self.random_weights else {}),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "template": self.template.id,
            "prompt": {
                "demo": self.template.demo,
                "query": self.template.query,
                "image": f"{VISION_START}{IMAGE_PAD} x {self.image_tokens}{VISION_END}",
                "chat_template": False,
            },
            "images": {
                "min_pixels": self.side * self.side,
                "max_pixels": self.side * self.side,
                "resize": f"{self.side}x{self.side}",
                "tokens_per_image": self.image_tokens,
            },
            "geometry": self.geometry.to_json(),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        }

    @property
    def image_tokens(self) -> int:
        """Image tokens per image (every image is resized to the same square)."""
        p = self.image_processor
        return (self.side // p.patch_size // p.merge_size) ** 2

    def head_site(self, layer: int) -> nn.Module:
        return self._layers[layer].self_attn.o_proj

    def residual_site(self, layer: int) -> nn.Module:
        return self._layers[layer]

    def image_input(self, path: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(pixel_values (patches, dim), grid_thw (3,)) of one image, upright and resized to the square
        (read once: ImageCache)."""
        return self._images(path)

    def _prepare_image(self, rgb: Any) -> tuple[torch.Tensor, torch.Tensor]:
        from PIL import Image

        square = rgb.resize((self.side, self.side), Image.Resampling.BICUBIC)
        out = self.image_processor(images=square, return_tensors="pt")
        return out["pixel_values"], out["image_grid_thw"][0]

    def render(self, task: Task) -> str:
        """The prompt of a task, each image written as its vision tokens."""
        image = VISION_START + IMAGE_PAD * self.image_tokens + VISION_END
        return self.template.render(task).replace(IMAGE, image)

    def encode(self, tasks: Sequence[Task]) -> Batch:
        tasks = list(tasks)
        if len({len(t.images) for t in tasks}) != 1:
            raise ValueError("a batch needs tasks with the same number of images (use backends.batches)")
        enc = self.tokenizer(
            [self.render(t) for t in tasks], padding="longest", return_tensors="pt", add_special_tokens=False
        )
        images = [self.image_input(p) for t in tasks for p in t.images]  # row by row, in prompt order
        answers = torch.tensor([self.answer_token(t.answer) for t in tasks])
        dev = self.device
        inputs = {
            "input_ids": enc["input_ids"].to(dev),
            "attention_mask": enc["attention_mask"].to(dev),
            "pixel_values": torch.cat([p for p, _ in images]).to(dev, self.dtype),
            "image_grid_thw": torch.stack([g for _, g in images]).to(dev),
        }
        return Batch(tasks, inputs, answers.to(dev))

    def run(self, batch: Batch, all_positions: bool = False) -> torch.Tensor:
        # no position_ids: the model derives its multimodal rotary positions from the mask and the images
        out = self.model(**batch.inputs, use_cache=False, logits_to_keep=0 if all_positions else 1)
        logits = out.logits
        return logits.float() if all_positions else logits[:, -1, :].float()

    def last_position(self, batch: Batch) -> Qwen3VLLastPosition:
        """The batch run once, ready to recompute its last position under many interventions."""
        return Qwen3VLLastPosition(self, batch)


# -- the tiny random Qwen3-VL --------------------------------------------------------------------
QWEN_SPECIALS = ("<|im_start|>", "<|im_end|>", VISION_START, VISION_END, IMAGE_PAD, "<|video_pad|>")
TINY_SIDE = 64


#: the tiny model: 4 layers x 4 query heads of 32 over 2 key/value heads (grouped-query attention,
#: n_heads * d_head = 128 != d_model = 64, as in the 4B), a 2-layer vision tower with deepstack
TINY_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "mrope_section": [6, 5, 5],
}
TINY_VISION = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "deepstack_visual_indexes": [0]}


def small_config(vocab: list[str], text: dict[str, Any], vision: dict[str, Any]) -> Any:
    """A Qwen3-VL config over `vocab` with the given text and vision sizes (the three rotary sections
    `mrope_section` in `text` sum to head_dim / 2)."""
    from transformers import Qwen3VLConfig

    ids = {w: i for i, w in enumerate(vocab)}
    text = dict(text)
    rope = {"rope_type": "default", "mrope_section": text.pop("mrope_section"), "mrope_interleaved": True}
    return Qwen3VLConfig(
        text_config={
            "vocab_size": len(vocab),
            "max_position_embeddings": 4096,
            "rope_theta": 10000.0,
            "initializer_range": 0.1,
            "rope_scaling": rope,
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|endoftext|>"],
            **text,
        },
        vision_config={
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": text["hidden_size"],
            "num_position_embeddings": 64,
            "initializer_range": 0.1,
            **vision,
        },
        image_token_id=ids[IMAGE_PAD],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids[VISION_START],
        vision_end_token_id=ids[VISION_END],
        tie_word_embeddings=False,
    )


def build_small_qwen3vl(
    folder: str | Path,
    seed: int,
    text: dict[str, Any] = TINY_TEXT,
    vision: dict[str, Any] = TINY_VISION,
    weights: bool = True,
    side: int = TINY_SIDE,
) -> Path:
    """A random Qwen3-VL written as a Hugging Face folder that loads through the same code as
    Qwen3-VL-4B-Instruct. Its vocabulary is the tiny OpenFlamingo's (object names, relations, prompt
    words as whole words) plus Qwen's special tokens (`text` may set a larger vocab_size); images are
    `side` x `side` (64: 4 image tokens). `weights=False` writes the config alone, for a backend built
    with random_weights on its device (a model at full size is never allocated here)."""
    from transformers import Qwen3VLForConditionalGeneration

    from .small import save_word_tokenizer, small_vocabulary

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = small_vocabulary(QWEN_SPECIALS)
    save_word_tokenizer(folder, vocab, QWEN_SPECIALS)
    config = small_config(vocab, text, vision)
    if weights:
        torch.manual_seed(seed)
        Qwen3VLForConditionalGeneration(config).save_pretrained(str(folder), safe_serialization=True)
    else:
        config.save_pretrained(str(folder))
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Qwen2VLImageProcessor",
                "patch_size": 16,
                "temporal_patch_size": 2,
                "merge_size": 2,
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.5, 0.5, 0.5],
                "size": {"shortest_edge": side * side, "longest_edge": side * side},
            },
            indent=1,
        )
    )
    return folder


def build_tiny(folder: str | Path, seed: int) -> Path:
    """The tiny random Qwen3-VL of the registry (`--model tiny-qwen3vl:SEED`)."""
    return build_small_qwen3vl(folder, seed)


class Qwen3VLLastPosition(LastPosition):
    """The last position of a Qwen3-VL batch, recomputed alone under many interventions (see
    last_position.py): the prompt minus its last token runs once with the cache kept (images,
    deepstack and multimodal positions as the model computes them); the last token is text, so its
    rotary position is one number for all three sections, taken from the model's own rope index.
    Qwen3's layer: RMSNorm, q/k/v with per-head q/k norms, grouped-query attention, o_proj (no bias),
    then x + attention, + MLP."""

    def __init__(self, backend: Qwen3VLBackend, batch: Batch) -> None:
        self.backend, self.batch = backend, batch
        qwen = backend.model.model
        self.text = qwen.language_model
        self.decoder = self.text.layers
        g = backend.geometry
        self.n_heads, self.d_head = g.n_heads, g.d_head
        x = batch.inputs
        with torch.no_grad():
            out = backend.model.model(
                input_ids=x["input_ids"][:, :-1],
                attention_mask=x["attention_mask"][:, :-1],
                pixel_values=x["pixel_values"],
                image_grid_thw=x["image_grid_thw"],
                use_cache=True,
            )
            cache = out.past_key_values
            kv = (
                [(la.keys, la.values) for la in cache.layers]
                if hasattr(cache, "layers")
                else list(zip(cache.key_cache, cache.value_cache))
            )
            self.layers = [_Layer(k, v, None, None) for k, v in kv]  # (P, key/value heads, T-1, Dh)
            positions, _ = qwen.get_rope_index(x["input_ids"], x["image_grid_thw"], None, x["attention_mask"])
            h0 = self.text.embed_tokens(x["input_ids"][:, -1:])
            cos, sin = self.text.rotary_emb(h0, positions[:, :, -1:])
            self.cos, self.sin = cos[:, 0], sin[:, 0]  # (P, Dh)
            self.attend = x["attention_mask"][:, :-1].bool()
            self.x_dec, self.z, self.attn_out, self.h_out = [], [], [], []
            self.base_logits = self._run(h0, start=0, record=True)[:, 0]

    def _cross_attention(self, i: int, x: torch.Tensor) -> torch.Tensor:
        return x

    def _attention(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Heads' outputs z (P, C, H * Dh) of layer i for its input x (P, C, d)."""
        dec, layer = self.decoder[i], self.layers[i]
        att = dec.self_attn
        h = dec.input_layernorm(x)
        q = att.q_norm(att.q_proj(h).unflatten(-1, (self.n_heads, self.d_head)))  # (P, C, H, Dh)
        k = att.k_norm(att.k_proj(h).unflatten(-1, (-1, self.d_head)))
        v = att.v_proj(h).unflatten(-1, (-1, self.d_head))
        n_kv = k.shape[-2]  # query head h reads key/value head h // (n_heads / n_kv), as repeat_kv does
        k, v = k.repeat_interleave(self.n_heads // n_kv, -2), v.repeat_interleave(self.n_heads // n_kv, -2)
        cos, sin = self.cos[:, None, None].to(q.dtype), self.sin[:, None, None].to(q.dtype)
        q, k = q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin
        grouped = q.unflatten(2, (n_kv, -1))  # (P, C, KV, G, Dh): the cache is read once per group
        past = torch.einsum("pckgd,pktd->pckgt", grouped, layer.keys).flatten(2, 3) * att.scaling
        past = past.masked_fill(~self.attend[:, None, None], torch.finfo(past.dtype).min)
        own = (q * k).sum(-1, keepdim=True) * att.scaling
        w = torch.cat([past, own], -1).softmax(-1, dtype=torch.float32).to(q.dtype)
        z = torch.einsum("pckgt,pktd->pckgd", w[..., :-1].unflatten(2, (n_kv, -1)), layer.values).flatten(2, 3)
        return (z + w[..., -1:] * v).flatten(-2)

    def _finish(self, i: int, x: torch.Tensor, attn_out: torch.Tensor) -> torch.Tensor:
        dec = self.decoder[i]
        m = x + attn_out
        return m + dec.mlp(dec.post_attention_layernorm(m))

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.backend.model.lm_head(self.text.norm(h)).float()
