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

FORMAT = "mfv-function-vector/1"


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
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({"vector": self.vector.detach().float().cpu().contiguous()}, str(path),
                  metadata={"format": FORMAT, "meta": json.dumps(self.meta(), sort_keys=True)})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FunctionVector":
        from safetensors import safe_open

        path = Path(path)
        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                vector = f.get_tensor("vector")
            if header.get("format") != FORMAT:
                raise ValueError(f"format is {header.get('format')!r}, expected {FORMAT!r}")
            meta = json.loads(header["meta"])
            meta["heads"] = [tuple(h) for h in meta["heads"]]
            fv = cls(vector=vector, **meta)
        except Exception as e:  # noqa: BLE001 - whatever is wrong, it is the file
            raise BackendError(f"{path} is not a function vector file ({type(e).__name__}: {e}); "
                               "export vectors with `mfv extract`") from e
        if fv.vector.shape != (fv.d_model,):
            raise BackendError(f"{path}: vector has shape {tuple(fv.vector.shape)}, its metadata says {fv.d_model}")
        return fv

    def check_fits(self, backend: Backend) -> None:
        g = backend.geometry
        if (self.d_model, self.n_layers) != (g.d_model, g.n_layers):
            raise BackendError(
                f"vector '{self.label}' was made for model {self.model_id} (d_model={self.d_model}, "
                f"{self.n_layers} layers); the current model {backend.model_id} has d_model={g.d_model}, "
                f"{g.n_layers} layers. Extract the vector again on this model."
            )
