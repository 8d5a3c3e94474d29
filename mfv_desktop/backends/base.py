"""The one small protocol every vision-language model sits behind.

fv/ only talks to a model through this: its geometry, batches of encoded tasks, a run that returns
the logits at the last prompt position, the module whose *input* holds the per-head outputs of
layer l (the head site), the module whose *output* is the residual stream after layer l (the
residual site), and the first token of an answer.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from mfv_desktop.codec import to_dict
from mfv_desktop.errors import BackendError
from mfv_desktop.tasks import PromptTemplate, Task

from .registry import FAMILIES, answer_ids


@dataclass(frozen=True)
class Geometry:
    n_layers: int
    n_heads: int
    d_head: int
    d_model: int
    #: layers that have a gated cross-attention block before them (OpenFlamingo)
    cross_attn_layers: tuple[int, ...] = ()
    vocab_size: int = 0

    def to_json(self) -> dict[str, Any]:
        return to_dict(self)


@dataclass
class Batch:
    """Tasks encoded for one forward pass by the backend that will run them. `inputs` is the
    backend's own (token ids, attention mask, images, positions: whatever its model takes); nothing
    above backends/ looks inside. Rows are left-padded, so the last position is each query's."""

    tasks: list[Task]
    inputs: dict[str, Any]
    answer_ids: torch.Tensor  # (B,) first token of each answer

    def __len__(self) -> int:
        return len(self.tasks)


class Backend(Protocol):
    #: the family's name in the registry (registry.FAMILIES); recorded with every vector and result
    family: str
    #: where this model's function vectors are added (a vector's own hook point must match it)
    hook_point: str
    model_id: str
    geometry: Geometry
    template: PromptTemplate
    device: torch.device
    dtype: torch.dtype
    model: nn.Module

    def provenance(self) -> dict[str, Any]: ...

    def encode(self, tasks: Sequence[Task]) -> Batch: ...

    def run(self, batch: Batch) -> torch.Tensor:
        """Logits at the last prompt position, (B, vocab), float32."""
        ...

    def head_site(self, layer: int) -> nn.Module:
        """The module whose input (B, T, n_heads * d_head) holds layer `layer`'s per-head outputs."""
        ...

    def residual_site(self, layer: int) -> nn.Module:
        """The module whose output is the residual stream after layer `layer` (tuple or tensor)."""
        ...

    def answer_token(self, answer: str) -> int: ...

    def token_count(self, name: str) -> int:
        """How many tokens `name` takes where an answer stands in the prompt."""
        ...

    def decode_token(self, token_id: int) -> str: ...

    @property
    def supports_last_position(self) -> bool:
        """Whether `last_position` is available: the fast, exact path of AIE and the layer sweep."""
        ...

    def last_position(self, batch: Batch) -> Any:
        """The batch run once, ready to recompute its last position under many interventions:
        `base_logits`, `patched_heads(layers, heads, values)`, `added(layers, scales, vector)`,
        `column_bytes()` (see last_position.py)."""
        ...


class TokenizerAnswers:
    """answer_token, token_count and decode_token from a Hugging Face tokenizer (`self.tokenizer`) and
    the family's answer rule (registry.answer_ids): what every family with such a tokenizer shares."""

    family: str
    model_id: str
    tokenizer: Any

    def _answer_ids(self, name: str) -> list[int]:
        """Tokens of `name` where an answer stands; [] when the model does not know it."""
        return answer_ids(
            lambda text: self.tokenizer(text, add_special_tokens=False)["input_ids"],
            name,
            FAMILIES[self.family].answer_prefix,
            self.tokenizer.unk_token_id,
        )

    def answer_token(self, answer: str) -> int:
        ids = self._answer_ids(answer)
        if not ids:
            raise BackendError(
                f"answer {answer!r} is not in the vocabulary of model {self.model_id}; "
                "rename the object to a word the model knows"
            )
        return ids[0]

    def token_count(self, name: str) -> int:
        """Tokens `name` takes as an answer; 0 when the model does not know it."""
        return len(self._answer_ids(name))

    def decode_token(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])


class ImageCache:
    """A model's inputs for the images read so far, the newest `size` kept: each image is read once,
    upright (its EXIF orientation applied, as the app shows it), in RGB, and turned into inputs by
    `prepare`. An image that cannot be read is a BackendError naming it."""

    def __init__(self, prepare: Callable[[Any], Any], size: int = 1024) -> None:
        self.prepare, self.size = prepare, size
        self._items: OrderedDict[str, Any] = OrderedDict()

    def __call__(self, path: str) -> Any:
        hit = self._items.get(path)
        if hit is not None:
            self._items.move_to_end(path)
            return hit
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                rgb = ImageOps.exif_transpose(im).convert("RGB")
        except (OSError, UnidentifiedImageError) as e:
            raise BackendError(f"cannot read image {path} ({e}); re-import or regenerate it") from e
        self._items[path] = hit = self.prepare(rgb)
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return hit


def batches(tasks: Sequence[Task], size: int) -> Iterator[list[Task]]:
    """Consecutive batches of at most `size` tasks with the same number of images."""
    cur: list[Task] = []
    for t in tasks:
        if cur and (len(cur) >= size or len(t.images) != len(cur[0].images)):
            yield cur
            cur = []
        cur.append(t)
    if cur:
        yield cur


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise BackendError(f"unknown device {device!r}: use cpu, cuda, cuda:N, mps or auto") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendError("device 'cuda' asked for, but torch sees no CUDA GPU here: use --device cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BackendError("device 'mps' asked for, but it is not available here: use --device cpu")
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise BackendError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPES)} or auto")
    return DTYPES[dtype]
