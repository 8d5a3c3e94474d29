"""The model families, and which one a model reference or folder belongs to. No torch here: the
window asks it (is this name one token for the model chosen?) before any model library loads.

A family is one adapter module in backends/ (its backend class, with `from_folder` and
`check_files`) plus what can be told about its folders without loading anything: how to
recognise one, where its tokenizer file is, the text an answer follows in its prompt, and its
tiny random model for tests. Nothing outside backends/ names a family; code that needs one asks
`family_of` for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

from mfv_desktop.errors import BackendError
from mfv_desktop.locations import bundled_folder

#: the file our own model folders describe themselves with (tiny and bundled models)
MANIFEST = "mfv_model.json"


@dataclass(frozen=True)
class Family:
    name: str
    #: "module:Class" of the backend (relative to mfv_desktop.backends)
    backend: str
    #: does this folder hold a model of the family (from its file names and small JSON files only)
    detect: Callable[[Path], bool]
    #: the tokenizer.json of a folder of the family, None if it has none
    tokenizer_file: Callable[[Path], Path | None]
    #: the prompt text right before an answer (the answer's first token is scored after it); a
    #: trailing space belongs to the answer's token (BPE writes a word's leading space into it), so
    #: the prompt ends at `answer_prefix.rstrip()`
    answer_prefix: str
    #: the tiny random model: its reference ("tiny" or "tiny:SEED") and "module:function(folder, seed)"
    tiny_ref: str
    tiny_builder: str
    #: what a user must put in a folder of this family (for error messages)
    hint: str
    #: method.md §7: the paper's model of this family and, per report table ("test", "diagonal") and
    #: condition, its mean top-1 first-token accuracy (%); None when the paper did not run the family
    paper: Mapping[str, Any] | None = None

    def backend_class(self) -> Any:
        module, _, cls = self.backend.partition(":")
        return getattr(import_module(f"mfv_desktop.backends.{module}"), cls)

    def build_tiny(self, folder: Path, seed: int) -> Path:
        module, _, fn = self.tiny_builder.partition(":")
        return getattr(import_module(f"mfv_desktop.backends.{module}"), fn)(folder, seed)


def _manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _openflamingo(folder: Path) -> bool:
    m = _manifest(folder)
    if m is not None:
        return m.get("family", "openflamingo") == "openflamingo"
    return (folder / "checkpoint.pt").is_file()


def _openflamingo_tokenizer(folder: Path) -> Path | None:
    m = _manifest(folder)
    if m is not None:
        candidates = [folder / str(m.get("lm", "lm")) / "tokenizer.json"]
    else:  # OpenFlamingo-4B files: the language model's folder
        candidates = sorted(folder.glob("*/tokenizer.json")) if folder.is_dir() else []
    return next((c for c in candidates if c.is_file()), None)


def _qwen3vl(folder: Path) -> bool:
    try:
        return json.loads((folder / "config.json").read_text()).get("model_type") == "qwen3_vl"
    except (OSError, ValueError, AttributeError):
        return False


def _hf_tokenizer(folder: Path) -> Path | None:
    return folder / "tokenizer.json" if (folder / "tokenizer.json").is_file() else None


FAMILIES: dict[str, Family] = {
    "openflamingo": Family(
        name="openflamingo",
        backend="openflamingo:OpenFlamingoBackend",
        detect=_openflamingo,
        tokenizer_file=_openflamingo_tokenizer,
        answer_prefix="A:",
        tiny_ref="tiny",
        tiny_builder="small:build_tiny",
        hint="OpenFlamingo-4B needs: checkpoint.pt from openflamingo/OpenFlamingo-4B-vitl-rpj3b-langinstruct, "
        "the RedPajama-INCITE-Instruct-3B-v1 folder (config, weights, tokenizer) and the open_clip "
        "ViT-L-14 OpenAI weights (open_clip_pytorch_model.bin); our own models have mfv_model.json",
        paper={
            "model": "OpenFlamingo-4B",
            "test": {
                "0-shot": "4.8 (synthetic), 11.8 (GQA)",
                "4-shot ICL": "19.0 (GQA)",
                "0-shot + FV": "8-9 (synthetic)",
                "0-shot + FFV": "about 25 (GQA)",
            },
            "diagonal": {"4-shot ICL": "8.1", "composite FFV": "16.8"},
        },
    ),
    "qwen3vl": Family(
        name="qwen3vl",
        backend="qwen3vl:Qwen3VLBackend",
        detect=_qwen3vl,
        tokenizer_file=_hf_tokenizer,
        answer_prefix="A: ",
        tiny_ref="tiny-qwen3vl",
        tiny_builder="qwen3vl:build_tiny",
        hint="Qwen3-VL needs the Hugging Face folder of Qwen/Qwen3-VL-4B-Instruct (or -2B-Instruct), all in one "
        "folder: config.json (model_type qwen3_vl), model*.safetensors with model.safetensors.index.json, "
        "tokenizer.json, tokenizer_config.json and preprocessor_config.json",
        paper={
            "model": "Qwen3-VL-4B",
            "test": {"4-shot ICL": "26.8 (synthetic)", "0-shot + FFV": "72.2 (synthetic)"},
            "diagonal": {"4-shot ICL": "28.7", "composite FFV": "45.1"},
        },
    ),
}


def folder_family(folder: Path) -> Family:
    """The family of a model folder; BackendError naming what each family needs when none fits."""
    if not folder.is_dir():
        raise BackendError(f"model folder {folder} does not exist")
    for fam in FAMILIES.values():
        if fam.detect(folder):
            return fam
    needs = " Or: ".join(f.hint for f in FAMILIES.values())
    raise BackendError(
        f"{folder} has no checkpoint.pt, config.json or {MANIFEST}: it holds no model this app knows. {needs}."
    )


def parse_ref(ref: str) -> tuple[Family, int] | None:
    """(family, seed) for a tiny model's reference ("tiny", "tiny:3", "tiny-qwen3vl:1"), else None."""
    name, _, seed = ref.partition(":")
    fam = next((f for f in FAMILIES.values() if f.tiny_ref == name), None)
    if fam is None:
        return None
    try:
        return fam, int(seed or 0)
    except ValueError as e:
        raise BackendError(f"model {ref!r}: a tiny model's seed must be an integer, e.g. {name}:0") from e


def family_of(ref: str) -> Family:
    """The family of a model reference: 'bundled', a tiny model, or a model folder."""
    tiny = parse_ref(ref)
    if tiny is not None:
        return tiny[0]
    return folder_family(bundled_folder() if ref == "bundled" else Path(ref).expanduser())


def answer_ids(encode: Callable[[str], list[int]], name: str, prefix: str, unk: int | None = None) -> list[int]:
    """The tokens of `name` where an answer stands (right after `prefix`); [] when the model does
    not know the word. `encode` turns text into token ids without special tokens. The one rule for
    the scored answer token, used by the backends and by the window's name check."""
    head = encode(prefix.rstrip())
    ids = encode(prefix + name)
    if unk is not None and unk in ids:
        return []
    if ids[: len(head)] != head:
        raise BackendError(f"the tokenizer merges {prefix!r} with {name!r}; the answer token is ambiguous")
    return ids[len(head) :]
