"""A saved function vector: the array as safetensors, what it is in the file's metadata.

Like a steering vector in Neuronpedia, it carries its label, the model it belongs to (id and
geometry), the hook point and layer to inject at, a default strength, the heads it came from and
where it was made. A vector from another model is refused with a message naming both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from mfv_desktop.backends import Backend, BackendError
from mfv_desktop.errors import VectorFileError
from mfv_desktop.vector_meta import FIX, FORMAT, check_meta, check_vector, read_vector_bytes, read_vector_file


@dataclass
class FunctionVector:
    vector: torch.Tensor  # (d_model,) float32
    label: str
    relation: str
    model_id: str
    d_model: int
    n_layers: int
    layer: int
    heads: list[tuple[int, int]]
    bias: str = "per_head"
    strength: float = 1.0
    hook_point: str = "residual:decoder_layer_output:last_token"
    provenance: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("vector")
        d["heads"] = [list(h) for h in self.heads]
        return d

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        vector = self.vector.detach().float().cpu().contiguous()
        try:
            check_vector(vector.numpy(), check_meta(json.loads(json.dumps(self.meta()))))
        except VectorFileError as e:
            raise BackendError(f"vector '{self.label}' cannot be saved to {path}: {e}") from e
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {"vector": vector}, str(path), metadata={"format": FORMAT, "meta": json.dumps(self.meta(), sort_keys=True)}
        )
        return path

    def to_bytes(self) -> bytes:
        """The vector file's bytes (the same bytes `save` writes)."""
        from safetensors.torch import save

        vector = self.vector.detach().float().cpu().contiguous()
        try:
            check_vector(vector.numpy(), check_meta(json.loads(json.dumps(self.meta()))))
        except VectorFileError as e:
            raise BackendError(f"vector '{self.label}' cannot be saved: {e}") from e
        return save({"vector": vector}, metadata={"format": FORMAT, "meta": json.dumps(self.meta(), sort_keys=True)})

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "vector") -> FunctionVector:
        """A vector from a file's bytes (checked as `load` checks a file; BackendError names `where`)."""
        try:
            meta, array = read_vector_bytes(data)
        except VectorFileError as e:
            raise BackendError(f"{where}: {e}; {FIX}") from e
        meta["heads"] = [tuple(h) for h in meta["heads"]]
        return cls(vector=torch.from_numpy(array.copy()), **meta)

    @classmethod
    def load(cls, path: str | Path) -> FunctionVector:
        """A checked vector file (see `vector_meta`): BackendError names the file, the field and the fix."""
        try:
            meta, array = read_vector_file(path)
        except VectorFileError as e:
            raise BackendError(str(e)) from e
        meta["heads"] = [tuple(h) for h in meta["heads"]]
        return cls(vector=torch.from_numpy(array), **meta)

    def check_fits(self, backend: Backend) -> None:
        g = backend.geometry
        if self.hook_point != backend.hook_point:
            raise BackendError(
                f"vector '{self.label}' was made for model {self.model_id}, where it is added at {self.hook_point}; "
                f"the current model {backend.model_id} takes vectors at {backend.hook_point} (another model family). "
                "Extract the vector again on this model."
            )
        if (self.d_model, self.n_layers) != (g.d_model, g.n_layers):
            raise BackendError(
                f"vector '{self.label}' was made for model {self.model_id} (d_model={self.d_model}, "
                f"{self.n_layers} layers); the current model {backend.model_id} has d_model={g.d_model}, "
                f"{g.n_layers} layers. Extract the vector again on this model."
            )
        wrong = [h for h in self.heads if not (0 <= h[0] < g.n_layers and 0 <= h[1] < g.n_heads)]
        if wrong or not 0 <= self.layer < g.n_layers:
            what = f"heads {wrong[:3]}" if wrong else f"layer {self.layer}"
            raise BackendError(
                f"vector '{self.label}' names {what}, outside {backend.model_id}'s {g.n_layers} "
                f"layers of {g.n_heads} heads. Extract the vector again on this model."
            )
