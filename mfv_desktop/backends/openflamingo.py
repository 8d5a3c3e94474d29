"""OpenFlamingo behind the backend protocol, built with the real `open_flamingo` package.

Loads fully offline from a model folder (reference/openflamingo.md, "Loading OpenFlamingo-4B"):
- a language-model folder (config.json, weights, tokenizer files), used as LM and tokenizer;
- an open_clip vision tower: an architecture name (ViT-L-14-quickgelu for OpenFlamingo-4B: the
  QuickGELU model it was trained with) and its open_clip state dict file, or a JSON config of our own
  (the tiny and bundled models);
- the Flamingo checkpoint (`checkpoint.pt`, loaded with weights_only=True, or `.safetensors`).

A folder describes itself with `mfv_model.json` (the tiny and bundled models write one). A folder
without it is read as the OpenFlamingo-4B layout: `checkpoint.pt`, an LM subfolder with config.json,
and `open_clip_pytorch_model.bin` or `open_clip_model.safetensors`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mfv_desktop.tasks import OPENFLAMINGO_TEMPLATE, Task

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
from .registry import FAMILIES, MANIFEST

CLIP_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
LM_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
#: any one of these sets of files is a tokenizer (fast JSON, BPE vocab + merges, SentencePiece)
TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"), ("tokenizer.model",))
OF4B_HINT = FAMILIES["openflamingo"].hint
#: open_flamingo's model (open_flamingo ships no types): an nn.Module whose language model gets its
#: Flamingo attributes (gated_cross_attn_layers, clear_conditioned_layers, ...) from a mixin at runtime
Flamingo = Any


@dataclass(frozen=True)
class OpenFlamingoFiles:
    folder: Path
    lm_dir: Path
    clip_arch: str
    clip_weights: Path | None
    clip_config: Path | None
    checkpoint: Path | None
    cross_attn_every_n_layers: int
    model_id: str
    #: the checkpoint holds every weight (our own models); OpenFlamingo-4B's holds only the new ones
    checkpoint_complete: bool = False
    #: PerceiverResampler / GatedCrossAttentionBlock arguments when they differ from open_flamingo's
    #: defaults (small models)
    perceiver: tuple[tuple[str, int], ...] = ()
    cross_attn: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_folder(cls, folder: str | Path, weights: bool = True) -> OpenFlamingoFiles:
        """`weights=False`: a folder of configs and tokenizer only (random weights, benchmarks/gpu.py)."""
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise BackendError(f"model folder {folder} does not exist. {OF4B_HINT}.")
        manifest = folder / MANIFEST
        files = cls._from_manifest(folder, manifest) if manifest.is_file() else cls._discover_4b(folder)
        files.validate(weights)
        return files

    @classmethod
    def _from_manifest(cls, folder: Path, manifest: Path) -> OpenFlamingoFiles:
        try:
            m = json.loads(manifest.read_text())
            opt = lambda k: (folder / m[k]) if m.get(k) else None  # noqa: E731
            return cls(
                folder=folder,
                lm_dir=folder / m["lm"],
                clip_arch=m["clip"],
                clip_weights=opt("clip_weights"),
                clip_config=opt("clip_config"),
                checkpoint=opt("checkpoint"),
                cross_attn_every_n_layers=int(m["cross_attn_every_n_layers"]),
                model_id=m.get("model_id", folder.name),
                checkpoint_complete=bool(m.get("checkpoint_complete", False)),
                perceiver=tuple(sorted((str(k), int(v)) for k, v in (m.get("perceiver") or {}).items())),
                cross_attn=tuple(sorted((str(k), int(v)) for k, v in (m.get("cross_attn") or {}).items())),
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise BackendError(
                f"{manifest} is malformed ({type(e).__name__}: {e}); it needs lm, clip and cross_attn_every_n_layers"
            ) from e

    @classmethod
    def _discover_4b(cls, folder: Path) -> OpenFlamingoFiles:
        ckpt = folder / "checkpoint.pt"
        if not ckpt.is_file():
            raise BackendError(f"{folder} has no {MANIFEST} and no checkpoint.pt. {OF4B_HINT}.")
        lm_dirs = sorted(p.parent for p in folder.glob("*/config.json"))
        if (folder / "config.json").is_file():
            lm_dirs.insert(0, folder)
        if not lm_dirs:
            raise BackendError(f"{folder}: no language-model folder (a subfolder with config.json). {OF4B_HINT}.")
        clip = [p for name in CLIP_WEIGHT_NAMES for p in sorted(folder.glob(f"**/{name}"))]
        if not clip:
            raise BackendError(
                f"{folder}: no open_clip vision weights ({' or '.join(CLIP_WEIGHT_NAMES)}); "
                f"OpenAI's TorchScript .pt does not load. {OF4B_HINT}."
            )
        return cls(
            folder, lm_dirs[0], "ViT-L-14-quickgelu", clip[0], None, ckpt, 2, model_id=f"openflamingo-4b:{folder.name}"
        )

    def validate(self, weights: bool = True) -> None:
        lm = self.lm_dir
        if not (lm / "config.json").is_file():
            raise BackendError(f"language-model folder {lm} has no config.json. {OF4B_HINT}.")
        if weights and not any(any(lm.glob(p)) for p in LM_WEIGHT_PATTERNS):
            raise BackendError(f"language-model folder {lm} has no weights (*.safetensors or pytorch_model*.bin)")
        if not any(all((lm / f).is_file() for f in group) for group in TOKENIZER_FILES):
            names = " or ".join("+".join(g) for g in TOKENIZER_FILES)
            raise BackendError(f"language-model folder {lm} has no tokenizer ({names})")
        for label, p in (
            ("vision weights", self.clip_weights),
            ("vision config", self.clip_config),
            ("Flamingo checkpoint", self.checkpoint),
        ):
            if p is not None and not p.is_file():
                raise BackendError(f"{label} file {p} is missing")

    def model_files(self, weights: bool = True) -> list[Path]:
        """Every file the model is loaded from: the manifest, configs, tokenizer and (`weights`) every weight
        file: the Flamingo checkpoint, the vision tower's and the language model's."""
        lm = self.lm_dir
        files = [
            self.folder / MANIFEST,
            self.clip_config,
            lm / "config.json",
            *(lm / f for group in TOKENIZER_FILES for f in group),
            lm / "tokenizer_config.json",
        ]
        if weights:
            files += [
                self.checkpoint,
                self.clip_weights,
                *sorted(p for pattern in LM_WEIGHT_PATTERNS for p in lm.glob(pattern)),
            ]
        return [p for p in files if p is not None and p.is_file()]

    def fingerprint(self, weights: bool = True) -> dict[str, str]:
        """The sha256 of every file of model_files() by its path in the folder, for provenance (streamed and
        cached by path, size and mtime: filehash.py)."""
        from .filehash import fingerprint

        return fingerprint(self.folder, self.model_files(weights))


def _read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    sd: Any  # whatever the file holds: checked below
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to parse is the file's fault
        raise BackendError(
            f"cannot read checkpoint {path} ({type(e).__name__}: {e}); "
            "is it a complete download of an OpenFlamingo checkpoint?"
        ) from e
    if isinstance(sd, dict) and "model_state_dict" in sd:
        sd = sd["model_state_dict"]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise BackendError(f"checkpoint {path} is not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def unique_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without OpenFlamingo's aliases (old_decoder_blocks, gated_cross_attn_layers)."""
    names = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
    return {k: v for k, v in model.state_dict().items() if k in names}


def load_flamingo(
    files: OpenFlamingoFiles, random_on: tuple[torch.device, torch.dtype] | None = None
) -> tuple[Flamingo, Any, Any]:
    """Build the Flamingo model with open_flamingo's factory and load the checkpoint (on CPU, fp32).
    `random_on=(device, dtype)`: every weight random, built on the device in the dtype, the language
    model from its config alone (no file read, nothing allocated on the CPU first): benchmarks/gpu.py."""
    import open_clip
    from open_flamingo import create_model_and_transforms

    if files.clip_config is not None:
        open_clip.add_model_config(files.clip_config)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        with contextlib.redirect_stdout(io.StringIO()), _quiet_logs(), _random_weights(random_on):
            model, image_processor, tokenizer = create_model_and_transforms(
                clip_vision_encoder_path=files.clip_arch,
                clip_vision_encoder_pretrained=str(files.clip_weights) if files.clip_weights else None,
                lang_encoder_path=str(files.lm_dir),
                tokenizer_path=str(files.lm_dir),
                cross_attn_every_n_layers=files.cross_attn_every_n_layers,
                use_local_files=True,
                decoder_layers_attr_name="gpt_neox.layers",
            )
    except BackendError:
        raise
    except Exception as e:  # noqa: BLE001
        raise BackendError(f"cannot build OpenFlamingo from {files.folder} ({type(e).__name__}: {e})") from e
    if files.perceiver:
        from open_flamingo.src.helpers import PerceiverResampler

        model.perceiver = PerceiverResampler(dim=model.vis_dim, **dict(files.perceiver))
    if files.cross_attn:
        from open_flamingo.src.helpers import GatedCrossAttentionBlock

        lm = model.lang_encoder
        blocks = [
            None
            if g is None
            else GatedCrossAttentionBlock(dim=model.lang_dim, dim_visual=model.vis_dim, **dict(files.cross_attn))
            for g in lm.gated_cross_attn_layers
        ]
        # layers without cross-attention hold None (torch's stub wants modules; add_module takes None)
        lm.gated_cross_attn_layers = nn.ModuleList(blocks)  # type: ignore[arg-type]
        lm.init_flamingo_layers(gradient_checkpointing=False)
    if random_on is not None:
        model.to(*random_on)  # small models' own perceiver and cross-attention, built just above
    if files.checkpoint is not None:
        _load_checkpoint_into(model, files)
    model.eval()
    return model, image_processor, tokenizer


@contextlib.contextmanager
def _random_weights(random_on: tuple[torch.device, torch.dtype] | None) -> Iterator[None]:
    """open_flamingo's factory, building on `device` in `dtype` with a random language model: it would
    read the LM's weights (from_pretrained) and move the vision tower to the CPU (open_clip's default)."""
    if random_on is None:
        yield
        return
    from unittest import mock

    import open_clip
    from open_flamingo.src import factory
    from transformers import AutoConfig, AutoModelForCausalLM

    device, dtype = random_on

    class FromConfig:
        @staticmethod
        def from_pretrained(path: str, **_: Any) -> nn.Module:
            return AutoModelForCausalLM.from_config(
                AutoConfig.from_pretrained(path, local_files_only=True), dtype=dtype
            )

    clip = open_clip.create_model_and_transforms
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with (
            device,
            mock.patch.object(factory, "AutoModelForCausalLM", FromConfig),
            mock.patch.object(open_clip, "create_model_and_transforms", lambda *a, **kw: clip(*a, device=device, **kw)),
        ):
            yield
    finally:
        torch.set_default_dtype(old)


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """open_clip warns that random init is random, transformers that resized embeddings are new: both
    are overwritten by the checkpoint, so the warnings would only alarm users."""
    import logging

    import transformers

    root = logging.getLogger()
    old_root, old_tf = root.level, transformers.logging.get_verbosity()
    root.setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        root.setLevel(old_root)
        transformers.logging.set_verbosity(old_tf)


def _load_checkpoint_into(model: nn.Module, files: OpenFlamingoFiles) -> None:
    path = files.checkpoint
    assert path is not None
    sd = _read_checkpoint(path)
    try:
        result = model.load_state_dict(sd, strict=False)
    except RuntimeError as e:
        msg = str(e)
        lines = [ln.strip() for ln in msg.splitlines() if "size mismatch" in ln][:3]
        raise BackendError(
            f"checkpoint {path} does not fit the model built from {files.folder}: "
            f"{'; '.join(lines) or msg[:300]}. The checkpoint is for another model size or "
            f"cross_attn_every_n_layers; use the checkpoint that matches the language model."
        ) from e
    if result.unexpected_keys:
        raise BackendError(
            f"checkpoint {path} has {len(result.unexpected_keys)} keys the model does not know "
            f"(first: {result.unexpected_keys[:3]}): it is for another architecture"
        )
    # a key missing under one alias may have been loaded under another
    ptr = {k: v.data_ptr() for k, v in model.state_dict().items()}
    loaded = {ptr[k] for k in sd if k in ptr}
    missing = [k for k in result.missing_keys if ptr[k] not in loaded]
    required = (
        missing
        if files.checkpoint_complete
        else [k for k in missing if k.startswith("perceiver.") or "gated_cross_attn" in k]
    )
    if required:
        raise BackendError(
            f"checkpoint {path} lacks {len(required)} weights the model needs "
            f"(first: {required[:3]}): the file is incomplete or for another model"
        )


class OpenFlamingoBackend(TokenizerAnswers, Backend):
    family = "openflamingo"
    hook_point = "residual:decoder_layer_output:last_token"
    template = OPENFLAMINGO_TEMPLATE

    def __init__(
        self,
        files: OpenFlamingoFiles,
        device: str | None = "cpu",
        dtype: str = "fp32",
        image_cache_size: int = 1024,
        random_weights: bool = False,
    ) -> None:
        """`random_weights`: every weight random, built directly on the device in its dtype (the folder
        needs no weights): benchmarks/gpu.py's models at paper size."""
        self.files = files
        self.model_id = files.model_id
        self.random_weights = random_weights
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        model, self.image_processor, self.tokenizer = load_flamingo(
            files, (self.device, self.dtype) if random_weights else None
        )
        self.tokenizer.padding_side = "left"
        self.model = model.to(device=self.device, dtype=self.dtype)
        self.model.requires_grad_(False)
        lm = self.model.lang_encoder
        cfg = lm.config
        n_heads = cfg.num_attention_heads
        self.geometry = Geometry(
            n_layers=cfg.num_hidden_layers,
            n_heads=n_heads,
            d_head=cfg.hidden_size // n_heads,
            d_model=cfg.hidden_size,
            cross_attn_layers=tuple(i for i, g in enumerate(lm.gated_cross_attn_layers) if g is not None),
            vocab_size=lm.get_output_embeddings().weight.shape[0],
        )
        self._layers = lm._get_decoder_layers()
        self._images = ImageCache(self.image_processor, image_cache_size)

    @classmethod
    def from_folder(cls, folder: str | Path, random_weights: bool = False, **kw: Any) -> OpenFlamingoBackend:
        return cls(
            OpenFlamingoFiles.from_folder(folder, weights=not random_weights), random_weights=random_weights, **kw
        )

    @staticmethod
    def check_files(folder: str | Path) -> dict[str, Any]:
        """The model's id and its files, checked without loading (BackendError names what is missing)."""
        files = OpenFlamingoFiles.from_folder(folder)
        return {
            "model_id": files.model_id,
            "files": {
                "language model": str(files.lm_dir),
                "vision tower": files.clip_arch + (f" ({files.clip_weights})" if files.clip_weights else ""),
                "checkpoint": str(files.checkpoint) if files.checkpoint else "",
            },
        }

    # -- protocol --------------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        import open_clip
        import transformers

        return {
            "model_id": self.model_id,
            "family": self.family,
            "model_folder": str(self.files.folder),
            "files": self.files.fingerprint(weights=not self.random_weights),
            **({"weights": "random"} if self.random_weights else {}),
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "template": self.template.id,
            "geometry": self.geometry.to_json(),
            "versions": {
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "open_clip": open_clip.__version__,
            },
        }

    def head_site(self, layer: int) -> nn.Module:
        return self._layers[layer].decoder_layer.attention.dense

    def residual_site(self, layer: int) -> nn.Module:
        return self._layers[layer]

    def image_tensor(self, path: str) -> torch.Tensor:
        """The vision tower's input for one image (upright, read once: ImageCache)."""
        return self._images(path)

    def encode(self, tasks: Sequence[Task]) -> Batch:
        tasks = list(tasks)
        n_img = {len(t.images) for t in tasks}
        if len(n_img) != 1:
            raise ValueError("a batch needs tasks with the same number of images (use backends.batches)")
        texts = [self.template.render(t) for t in tasks]
        enc = self.tokenizer(texts, padding="longest", return_tensors="pt", add_special_tokens=False)
        mask = enc["attention_mask"]
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        vision = torch.stack([torch.stack([self.image_tensor(p) for p in t.images]) for t in tasks])
        vision = vision.unsqueeze(2)  # (B, n_images, F=1, 3, H, W)
        answers = torch.tensor([self.answer_token(t.answer) for t in tasks])
        dev = self.device
        inputs = {
            "input_ids": enc["input_ids"].to(dev),
            "attention_mask": mask.to(dev),
            "position_ids": position_ids.to(dev),
            "vision_x": vision.to(dev, self.dtype),
        }
        return Batch(tasks, inputs, answers.to(dev))

    def run(self, batch: Batch, all_positions: bool = False) -> torch.Tensor:
        m, x = self.model, batch.inputs
        m._encode_vision_x(x["vision_x"])
        m._condition_media_locations(x["input_ids"])
        try:
            out = m.lang_encoder(
                input_ids=x["input_ids"],
                attention_mask=x["attention_mask"],
                position_ids=x["position_ids"],
                use_cache=False,
                logits_to_keep=0 if all_positions else 1,
            )
        finally:
            m.lang_encoder.clear_conditioned_layers()
        logits = out.logits
        return logits.float() if all_positions else logits[:, -1, :].float()

    # -- the fast path ------------------------------------------------------------------------
    @property
    def supports_last_position(self) -> bool:
        from .last_position import supported

        return supported(self.model)

    def last_position(self, batch: Batch):
        """The batch run once, ready to recompute its last position under many interventions
        (see last_position.py); only for GPT-NeoX language models (supports_last_position)."""
        from .last_position import LastPosition

        return LastPosition(self, batch)
