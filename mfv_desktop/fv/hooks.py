"""Read and patch per-head outputs; add a vector to the residual stream. Any batch size.

Head outputs z(l, h) are the slices of the *input* of layer l's attention output projection (the
backend's head site), at the last prompt position (batches are left-padded, so that is position -1
for every row). Patching happens in a forward pre-hook, so the projection is recomputed from the
edited input, bias included. The residual stream after layer L is the output of the backend's
residual site: a tuple in transformers <= 4.57, a plain tensor in 5.x; both are handled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

import torch

from mfv_desktop.backends import Backend


@contextlib.contextmanager
def record_heads(
    backend: Backend, layers: Iterable[int] | None = None, position: int = -1
) -> Iterator[dict[int, torch.Tensor]]:
    """Yields a dict that fills, on each forward, with layer -> (B, n_heads, d_head) float32 outputs."""
    g = backend.geometry
    layers = range(g.n_layers) if layers is None else list(layers)
    store: dict[int, torch.Tensor] = {}
    handles = []
    for layer in layers:

        def hook(_mod, args, layer=layer):
            x = args[0]
            store[layer] = x[:, position].detach().float().view(x.shape[0], g.n_heads, g.d_head).clone()

        handles.append(backend.head_site(layer).register_forward_pre_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def patch_heads(
    backend: Backend, patches: Mapping[int, Sequence[tuple[int, torch.Tensor]]], position: int | slice = -1
) -> Iterator[None]:
    """Set z(l, h) := value at `position` (the last token; a slice for several) for each
    layer -> [(head, value)]; value is (d_head,) for all rows or (B, d_head) per row."""
    g = backend.geometry
    handles = []
    for layer, edits in patches.items():

        def pre_hook(_mod, args, edits=edits):
            x = args[0]
            x = x.clone()
            view = x.view(x.shape[0], x.shape[1], g.n_heads, g.d_head)
            for head, value in edits:
                v = value.to(x.dtype)
                if isinstance(position, slice) and v.dim() == 2:
                    v = v[:, None]  # one value per row, the same at every position
                view[:, position, head] = v
            return (x, *args[1:])

        handles.append(backend.head_site(layer).register_forward_pre_hook(pre_hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _add_at(hidden: torch.Tensor, vector: torch.Tensor, position: int) -> torch.Tensor:
    delta = torch.zeros_like(hidden)
    delta[:, position] = vector.to(hidden.dtype)
    return hidden + delta


@contextlib.contextmanager
def add_vector(
    backend: Backend, layer: int, vector: torch.Tensor, strength: float = 1.0, position: int = -1
) -> Iterator[None]:
    """Add strength * vector to the residual stream after `layer` at `position` (the last token).
    `vector` is (d_model,) or (B, d_model); it may require grad (fine-tuning)."""
    if vector.shape[-1] != backend.geometry.d_model:
        raise ValueError(
            f"vector has {vector.shape[-1]} dims, model {backend.model_id} has "
            f"d_model={backend.geometry.d_model}: it was made for another model"
        )
    v = vector.to(backend.device) * strength

    def hook(_mod, _args, output):
        if isinstance(output, tuple):
            return (_add_at(output[0], v, position), *output[1:])
        return _add_at(output, v, position)

    handle = backend.residual_site(layer).register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
