"""The last prompt position alone, recomputed from layer l up, for many interventions at once.

An intervention at the last position of layer l (a head's output patched, a vector added to the
residual stream) leaves every earlier position, and every layer below l, as it was. So a batch of
prompts runs once: a forward pass over all positions but the last keeps each layer's keys and
values, the vision latents' keys and values are computed once per cross-attention layer, and one
pass over the last position records each layer's states ("base"). An intervention is then a
*column*: a state after layer l (the base state, changed) from which only layers l+1..L-1 run, for
the last position only, attending to the cached keys and values. Columns of every prompt of the
batch run together as a (prompts x columns) grid, so a prompt's cache is shared by its columns,
never copied.

This follows open_flamingo's gated cross-attention (the last token attends to the latents of the
last image, or of all images when only_attend_immediate_media is off) and transformers' GPT-NeoX
layer (rotary on part of each head, parallel or sequential residual): the language model of
OpenFlamingo-3B/4B. Another family gives its own step by overriding the layer's parts (`_attention`,
`_finish`, `_cross_attention`, `_logits`; the output projection is the backend's head site), as
backends/qwen3vl.py does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def supported(model: nn.Module) -> bool:
    lm = getattr(model, "lang_encoder", None)
    return lm is not None and hasattr(lm, "gpt_neox") and hasattr(lm, "embed_out")


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


@dataclass
class _Layer:
    keys: torch.Tensor  # (P, H, T-1, Dh) with rotary applied, as cached
    values: torch.Tensor
    media_k: torch.Tensor | None  # (P, Hx, N, Dx): cross-attention keys of the latents attended to
    media_v: torch.Tensor | None


class LastPosition:
    """The last position of a batch of prompts, ready for columns of interventions (see module doc)."""

    def __init__(self, backend, batch) -> None:
        self.backend, self.batch = backend, batch
        model = backend.model
        lm = model.lang_encoder
        self.lm, self.flamingo_layers = lm, lm._get_decoder_layers()
        g = backend.geometry
        self.n_heads, self.d_head = g.n_heads, g.d_head
        x = batch.inputs
        with torch.no_grad():
            model._encode_vision_x(x["vision_x"])
            try:
                out = lm(
                    input_ids=x["input_ids"][:, :-1],
                    attention_mask=x["attention_mask"][:, :-1],
                    position_ids=x["position_ids"][:, :-1],
                    use_cache=True,
                )
                vis_x = self.flamingo_layers[0].vis_x  # (P, n_images, n_latents, d_visual)
            finally:
                lm.clear_conditioned_layers()
            cache = out.past_key_values
            kv = (
                [(la.keys, la.values) for la in cache.layers]
                if hasattr(cache, "layers")
                else list(zip(cache.key_cache, cache.value_cache))
            )
            self.layers = []
            for fl, (k, v) in zip(self.flamingo_layers, kv):
                mk = mv = None
                xattn = fl.gated_cross_attn_layer
                if xattn is not None:
                    att = xattn.attn
                    media = vis_x[:, -1] if att.only_attend_immediate_media else vis_x.flatten(1, 2)
                    mk, mv = att.to_kv(media).chunk(2, dim=-1)
                    mk, mv = (t.unflatten(-1, (att.heads, -1)).transpose(1, 2) for t in (mk, mv))
                self.layers.append(_Layer(k, v, mk, mv))
            # rotary angles of the last position, per prompt: (P, rotary dims)
            rot = lm.gpt_neox.rotary_emb
            h0 = lm.gpt_neox.embed_in(x["input_ids"][:, -1:])
            cos, sin = rot(h0, x["position_ids"][:, -1:])
            self.cos, self.sin = cos[:, 0], sin[:, 0]
            # padding of the cached positions: (P, T-1), True where attended
            self.attend = x["attention_mask"][:, :-1].bool()
            # the base pass: one column, no intervention, every layer's states kept
            self.x_dec: list[torch.Tensor] = []
            self.z: list[torch.Tensor] = []
            self.attn_out: list[torch.Tensor] = []
            self.h_out: list[torch.Tensor] = []
            self.base_logits = self._run(h0, start=0, record=True)[:, 0]

    # -- one layer for a (P, C, d) grid ---------------------------------------------------------
    def _cross_attention(self, i: int, x: torch.Tensor) -> torch.Tensor:
        xattn = self.flamingo_layers[i].gated_cross_attn_layer
        if xattn is None:
            return x
        att, layer = xattn.attn, self.layers[i]
        q = att.to_q(att.norm(x)).unflatten(-1, (att.heads, -1)) * att.scale  # (P, C, Hx, Dx)
        sim = torch.einsum("pchd,phnd->pchn", q, layer.media_k)
        out = torch.einsum("pchn,phnd->pchd", sim.softmax(-1), layer.media_v).flatten(-2)
        x = att.to_out(out) * xattn.attn_gate.tanh() + x
        return xattn.ff(x) * xattn.ff_gate.tanh() + x

    def _attention(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Heads' outputs z (P, C, H * Dh) of decoder layer i for its input x (P, C, d)."""
        dec, layer = self.flamingo_layers[i].decoder_layer, self.layers[i]
        att = dec.attention
        qkv = att.query_key_value(dec.input_layernorm(x)).unflatten(-1, (self.n_heads, 3 * self.d_head))
        q, k, v = qkv.chunk(3, dim=-1)  # (P, C, H, Dh)
        r = self.cos.shape[-1]
        cos, sin = self.cos[:, None, None].to(q.dtype), self.sin[:, None, None].to(q.dtype)

        def rotary(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t[..., :r] * cos + _rotate_half(t[..., :r]) * sin, t[..., r:]], dim=-1)

        q, k = rotary(q), rotary(k)
        scale = att.scaling if hasattr(att, "scaling") else self.d_head**-0.5
        past = torch.einsum("pchd,phtd->pcht", q, layer.keys) * scale
        past = past.masked_fill(~self.attend[:, None, None], torch.finfo(past.dtype).min)
        own = (q * k).sum(-1, keepdim=True) * scale
        w = torch.cat([past, own], -1).softmax(-1, dtype=torch.float32).to(q.dtype)
        z = torch.einsum("pcht,phtd->pchd", w[..., :-1], layer.values) + w[..., -1:] * v
        return z.flatten(-2)

    def _finish(self, i: int, x: torch.Tensor, attn_out: torch.Tensor) -> torch.Tensor:
        """The decoder layer's output from its input and its attention output."""
        dec = self.flamingo_layers[i].decoder_layer
        if dec.use_parallel_residual:
            return x + attn_out + dec.mlp(dec.post_attention_layernorm(x))
        m = x + attn_out
        return m + dec.mlp(dec.post_attention_layernorm(m))

    def _run(self, h: torch.Tensor, start: int | torch.Tensor, record: bool = False) -> torch.Tensor:
        """Logits (P, C, vocab) from states h (P, C, d) entering layer start[c] (ascending)."""
        n_layers = len(self.layers)
        start = torch.full((h.shape[1],), start) if isinstance(start, int) else start.cpu()
        h = h.clone()
        for i in range(int(start.min()) if len(start) else n_layers, n_layers):
            c = int((start <= i).sum())  # the columns that have reached layer i (a prefix)
            x = self._cross_attention(i, h[:, :c])
            z = self._attention(i, x)
            attn_out = self.backend.head_site(i)(z)
            out = self._finish(i, x, attn_out)
            if record:
                self.x_dec.append(x[:, 0].clone())  # (x may be a view of h, which changes now)
                self.z.append(z[:, 0])
                self.attn_out.append(attn_out[:, 0])
                self.h_out.append(out[:, 0])
            h[:, :c] = out
        return self._logits(h)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.lm.embed_out(self.lm.gpt_neox.final_layer_norm(h)).float()

    # -- interventions ------------------------------------------------------------------------------
    @torch.no_grad()
    def patched_heads(self, layers: torch.Tensor, heads: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Logits (P, C, vocab): column c with z(layers[c], heads[c]) := values[c] (d_head,), for every
        prompt. Columns must be sorted by layer."""
        dense_w = [self.backend.head_site(i).weight for i in range(len(self.layers))]
        dh = self.d_head
        states = []
        for layer in torch.unique_consecutive(layers).tolist():
            sel = (layers == layer).nonzero().flatten()
            hs = heads[sel].to(self.base_logits.device)
            z = self.z[layer].unflatten(-1, (self.n_heads, dh))[:, hs]  # (P, c, Dh)
            w = dense_w[layer].view(-1, self.n_heads, dh)[:, hs]  # (d, c, Dh)
            delta = torch.einsum("dcj,pcj->pcd", w, values[sel].to(z.dtype)[None] - z)
            attn_out = self.attn_out[layer][:, None] + delta
            states.append(self._finish(layer, self.x_dec[layer][:, None].expand_as(attn_out), attn_out))
        return self._run(torch.cat(states, 1), layers + 1)

    @torch.no_grad()
    def added(self, layers: torch.Tensor, scales: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        """Logits (P, C, vocab): column c with scales[c] * vector added after layer layers[c] (sorted)."""
        h = torch.stack([self.h_out[int(layer)] for layer in layers], 1)  # (P, C, d)
        dev = h.device
        h = h + scales.to(dev, h.dtype)[None, :, None] * vector.to(dev, h.dtype)
        return self._run(h, layers + 1)

    def column_bytes(self) -> int:
        """About the memory one column takes for every prompt of the batch at once (states, logits)."""
        P, d = self.base_logits.shape[0], self.h_out[0].shape[-1]
        width = max(d * 8, self.layers[0].keys.shape[2] * self.n_heads * 4)  # MLP, attention weights
        return P * 4 * (3 * self.base_logits.shape[-1] + width)
