"""The bundled model: a small OpenFlamingo trained here, on CPU, on the project's own scenes.

Same architecture as OpenFlamingo-4B (open_flamingo's classes, loaded by the same backend code),
small sizes. Training, in order (reference/small-model-training.md says why):

1. **Scene pool.** Scenes in the paper's layout (800 px canvas, 130-230 px objects, four base
   relations only: the diagonal relations stay unseen) drawn by the project's generator and
   preprocessed exactly as the backend does. Prompts are sampled from the pool combinatorially
   (relation, anchor scene, K context scenes), so a few ten thousand images give millions of prompts.
2. **Vision tower.** OpenFlamingo keeps a pretrained CLIP frozen (it encodes images under
   `torch.no_grad()`). At small scale: pretrain the ViT on a per-patch objective (which object
   kind covers each patch, on all kinds), freeze it, and cache its features for the pool.
3. **Curriculum.** Mixed within every batch; a stage advances when its new prompt kind reaches
   the accuracy threshold (not on a timer), earlier kinds stay in the mix:
   - ``named``: ``<image>Q:{a} {rel} {t}.`` the relation named, the answer right after it;
   - ``relate``: ``<image>Q:{a} {t} {rel}.`` the relation of two named objects;
   - ``bridge``: demonstrations ``<image>Q:{a}. A:{t} {rel}.`` that name the relation after the
     answer, a query in the paper's form;
   - ``paper``: the paper's prompts (method.md §1), K = 0..8, the relation never named.
   Loss on every answer token.
4. **Export.** The state dict without OpenFlamingo's aliases, fp16, as safetensors, with a
   manifest the backend loads.

`train()` is a generator of Progress: it checkpoints every few minutes and resumes from the last
checkpoint in its work folder. Not part of the app (nothing in mfv_desktop imports it, and neither the
wheel nor the bundle carries it): run it from a source checkout with `python -m training` (__main__.py).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Generator, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mfv_desktop.backends.small import PROMPT_WORDS, SmallConfig, build_small_model
from mfv_desktop.files import atomic_path
from mfv_desktop.progress import Progress

BASE = ("above", "below", "left", "right")
PROMPT_KINDS = ("named", "relate", "bridge", "paper")
#: stage -> mix of prompt kinds; stage s advances when kind STAGE_GOAL[s] reaches the threshold
STAGES: tuple[dict[str, float], ...] = (
    {"named": 1.0},
    {"named": 0.3, "relate": 0.7},
    {"named": 0.15, "relate": 0.15, "bridge": 0.7},
    {"named": 0.1, "relate": 0.1, "bridge": 0.2, "paper": 0.6},
)
STAGE_GOAL = ("named", "relate", "bridge", None)
#: where an exported model records how it was trained
TRAINING_STATE = "training_state.json"


@dataclass(frozen=True)
class BundledConfig:
    seed: int = 0
    arch: SmallConfig = SmallConfig(
        seed=0,
        n_layers=6,
        n_heads=8,
        d_model=128,
        cross_attn_every_n_layers=1,
        image_size=64,
        patch_size=8,
        vision_width=128,
        vision_layers=3,
        gate=0.5,
        rotary_pct=0.5,
        perceiver=(("depth", 1), ("dim_head", 32), ("heads", 4), ("num_latents", 64)),
        cross_attn=(("dim_head", 32), ("heads", 4)),
    )
    n_novel: int = 4
    pool_train: int = 24000
    pool_novel: int = 2000
    pool_val: int = 1000
    vision_steps: int = 600
    perceiver_steps: int = 400
    lr: float = 1e-3
    batch: int = 32
    max_k: int = 8
    threshold: float = 0.9
    #: stop after this many prompts (rows); the run can be resumed with a larger budget
    max_prompts: int = 3_000_000
    checkpoint_every_s: float = 180.0
    eval_every: int = 250


def vocabulary() -> list[str]:
    from mfv_desktop.scenes import KINDS

    return list(dict.fromkeys(["<|endoftext|>", "<unk>", *PROMPT_WORDS, *KINDS, *BASE]))


# -- 1. the scene pool ---------------------------------------------------------------------------------
def _pool_chunk(args: tuple[dict, list[int], int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render scenes and preprocess them as the backend does (worker process)."""
    spec_json, indices, image_size = args
    from PIL import Image

    from mfv_desktop.scenes import GeneratorSpec, make_scene, resolve_stamps
    from mfv_desktop.scenes.objects import KINDS

    spec = GeneratorSpec.from_json(spec_json)
    stamps = resolve_stamps(spec.kinds)
    kind_id = {k: i + 1 for i, k in enumerate(KINDS)}  # 0 = background
    g = image_size // 8
    images, objects, patches = [], [], []
    for i in indices:
        scene, img = make_scene(spec, stamps, i)
        small = img.resize((image_size, image_size), Image.BICUBIC)
        images.append(np.asarray(small, dtype=np.uint8))
        anchor = scene.anchor
        names = [anchor] + [scene.target(anchor, r) for r in BASE] + [scene.meta["distractor"]]
        objects.append([kind_id[n] for n in names])
        # per-patch label: the kind covering most of the patch (background if < 25% covered)
        cover = np.zeros((len(KINDS) + 1, g, g))
        cell = scene.width / g
        for o in scene.objects:
            for gy in range(g):
                for gx in range(g):
                    x0, y0 = gx * cell, gy * cell
                    w = max(0.0, min(o.box.x1, x0 + cell) - max(o.box.x0, x0))
                    h = max(0.0, min(o.box.y1, y0 + cell) - max(o.box.y0, y0))
                    cover[kind_id[o.name], gy, gx] += w * h / cell**2
        label = cover.argmax(0)
        label[cover.max(0) < 0.25] = 0
        patches.append(label)
    return np.stack(images), np.array(objects, dtype=np.int16), np.stack(patches).astype(np.int16)


def build_pool(
    path: Path, kinds: Iterable[str], n: int, seed: int, split: str, image_size: int, workers: int = 2
) -> dict[str, np.ndarray]:
    """Scenes rendered at the paper's 800 px and resized as the backend's processor resizes them."""
    if path.is_file():
        return dict(np.load(path))
    from concurrent.futures import ProcessPoolExecutor

    from mfv_desktop.scenes import GeneratorSpec

    spec = GeneratorSpec(n_scenes=n, seed=seed, kinds=tuple(kinds), split=split).to_json()
    chunks = [(spec, list(range(s, min(n, s + 500))), image_size) for s in range(0, n, 500)]
    with ProcessPoolExecutor(workers) as ex:
        parts = list(ex.map(_pool_chunk, chunks))
    pool = {
        "images": np.concatenate([p[0] for p in parts]),
        "objects": np.concatenate([p[1] for p in parts]),
        "patches": np.concatenate([p[2] for p in parts]),
    }
    with atomic_path(path) as tmp:  # keeps the .npz suffix np.savez insists on
        np.savez(tmp, **pool)
    return pool


def _normalise(images: np.ndarray, processor) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> the processor's normalised (N, 3, H, W) tensor."""
    norm = [t for t in processor.transforms if t.__class__.__name__ == "Normalize"][0]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(norm.mean)[:, None, None]) / torch.tensor(norm.std)[:, None, None]


# -- 2. the vision tower ------------------------------------------------------------------------------
def _what_and_where(
    encode,
    params: list[nn.Parameter],
    width: int,
    patches: np.ndarray,
    n_items: int,
    batch: int,
    lr: float,
    steps: int,
    seed: int,
    label: str,
) -> Generator[Progress, None, float]:
    """Train `params` so that token i of encode(indices) (B, n_patches, width) says which object kind
    covers patch i and where patch i is (row, column). Returns the kind accuracy (EMA)."""
    from mfv_desktop.scenes import KINDS

    labels = torch.from_numpy(patches.astype(np.int64)).flatten(1)
    n_patch = labels.shape[1]
    side = int(round(math.sqrt(n_patch)))
    rows, cols = torch.arange(n_patch) // side, torch.arange(n_patch) % side
    heads = nn.ModuleDict(
        {"kind": nn.Linear(width, len(KINDS) + 1), "row": nn.Linear(width, side), "col": nn.Linear(width, side)}
    )
    opt = torch.optim.AdamW(params + list(heads.parameters()), lr=lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    acc = 0.0
    for step in range(steps):
        idx = torch.randint(0, n_items, (batch,), generator=gen)
        tokens = encode(idx)
        kind = heads["kind"](tokens)
        loss = (
            nn.functional.cross_entropy(kind.flatten(0, 1), labels[idx].flatten())
            + nn.functional.cross_entropy(heads["row"](tokens).flatten(0, 1), rows.repeat(len(idx)))
            + nn.functional.cross_entropy(heads["col"](tokens).flatten(0, 1), cols.repeat(len(idx)))
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        hit = float((kind.argmax(-1) == labels[idx]).float().mean())
        acc = 0.9 * acc + 0.1 * hit if step else hit
        if step % 20 == 0 or step == steps - 1:
            yield Progress(step + 1, steps, f"{label}: loss {loss.item():.3f} kind acc {acc:.3f}")
    return acc


def pretrain_vision(
    model: nn.Module, processor, pools: list[dict[str, np.ndarray]], steps: int, seed: int
) -> Generator[Progress, None, float]:
    """Per-patch objective on all kinds: which object kind covers each patch, and where the patch is
    (row and column), so that the tokens carry both what and where. Returns the patch kind accuracy."""
    vis = model.vision_encoder
    images = np.concatenate([p["images"] for p in pools])
    patches = np.concatenate([p["patches"] for p in pools])
    for p in vis.parameters():
        p.requires_grad_(True)
    vis.train()
    acc = yield from _what_and_where(
        lambda idx: vis(_normalise(images[idx.numpy()], processor))[1],
        list(vis.parameters()),
        vis.transformer.width,
        patches,
        len(images),
        batch=128,
        lr=5e-4,
        steps=steps,
        seed=seed,
        label="vision tower",
    )
    vis.eval()
    for p in vis.parameters():
        p.requires_grad_(False)
    return acc


def pretrain_perceiver(
    model: nn.Module, feats: torch.Tensor, patches: np.ndarray, steps: int, seed: int
) -> Generator[Progress, None, float]:
    """Latent i of the perceiver learns to say what is at patch i and where patch i is, so that the
    language model's cross-attention finds clean (object, position) slots, one per patch, from the
    start. Needs as many latents as patches. Returns the final per-latent kind accuracy."""
    per = model.perceiver
    n_lat, d = per.latents.shape
    if n_lat != feats.shape[1]:
        raise ValueError(f"perceiver pretraining needs one latent per patch ({feats.shape[1]}), got {n_lat}")
    return (
        yield from _what_and_where(
            lambda idx: per(feats[idx].float()[:, None, None])[:, 0],
            list(per.parameters()),
            d,
            patches,
            len(feats),
            batch=64,
            lr=1e-3,
            steps=steps,
            seed=seed,
            label="perceiver",
        )
    )


@torch.no_grad()
def vision_features(model: nn.Module, processor, images: np.ndarray, batch: int = 256) -> torch.Tensor:
    """The frozen tower's patch tokens for every pool image, (N, n_patches, width) fp16."""
    out = []
    for s in range(0, len(images), batch):
        out.append(model.vision_encoder(_normalise(images[s : s + batch], processor))[1].half())
    return torch.cat(out)


# -- 3. prompts ---------------------------------------------------------------------------------------
class Sampler:
    """Token sequences of the four prompt kinds, built straight from vocabulary ids."""

    def __init__(self, tokenizer, objects: np.ndarray, kind_names: list[str], seed: int, max_k: int):
        vocab = tokenizer.get_vocab()
        self.t = {w: vocab[w] for w in ("Q", "A", ":", ".", "<image>", "<|endofchunk|>", *BASE)}
        self.name_id = np.array([0] + [vocab[k] for k in kind_names])  # pool kind id -> token id
        self.objects = objects  # (N, 6): anchor, above, below, left, right, distractor (kind ids)
        self.rng = np.random.default_rng(seed)
        self.max_k = max_k

    def _shot(self, scene: int, rel: int) -> tuple[int, int]:
        o = self.objects[scene]
        return int(self.name_id[o[0]]), int(self.name_id[o[1 + rel]])

    def sample(self, kind: str, k: int | None = None) -> tuple[list[int], list[int], list[int], dict[str, Any]]:
        """tokens, answer positions (index of the token to predict), scenes, info; `k` fixes K"""
        t, rng = self.t, self.rng
        toks: list[int] = []
        answers: list[int] = []
        scenes: list[int] = []
        if kind in ("named", "relate"):
            for _ in range(4):  # four independent items per row, each with its own image
                s, r = int(rng.integers(len(self.objects))), int(rng.integers(4))
                a, tg = self._shot(s, r)
                rel = t[BASE[r]]
                body = [a, rel, tg] if kind == "named" else [a, tg, rel]
                toks += [t["<image>"], t["Q"], t[":"], *body]
                answers.append(len(toks) - 1)
                toks += [t["."], t["<|endofchunk|>"]]
                scenes.append(s)
            return toks, answers, scenes, {"query": answers}
        r = int(rng.integers(4))
        if k is None:
            k = int(rng.integers(0, self.max_k + 1))
        if kind == "bridge":
            k = min(max(k, 1), 6)
        chosen = rng.choice(len(self.objects), k + 1, replace=False)
        for s in chosen[:-1]:
            a, tg = self._shot(int(s), r)
            toks += [t["<image>"], t["Q"], t[":"], a, t["."], t["A"], t[":"], tg]
            answers.append(len(toks) - 1)
            if kind == "bridge":
                toks.append(t[BASE[r]])
                answers.append(len(toks) - 1)
            toks += [t["."], t["<|endofchunk|>"]]
            scenes.append(int(s))
        a, tg = self._shot(int(chosen[-1]), r)
        toks += [t["<image>"], t["Q"], t[":"], a, t["."], t["A"], t[":"], tg]
        answers.append(len(toks) - 1)
        scenes.append(int(chosen[-1]))
        return toks, answers, scenes, {"query": [answers[-1]], "k": k}

    def batch(self, mix: dict[str, float], size: int, k: int | None = None) -> dict[str, Any]:
        """A batch of mixed prompt kinds. K is the same for the whole batch (drawn when not given), so
        that rows have about as many images: open_flamingo's cross-attention costs grow with the
        batch's largest image count."""
        kinds = self.rng.choice(list(mix), size, p=np.array(list(mix.values())) / sum(mix.values()))
        if k is None:
            k = int(self.rng.integers(0, self.max_k + 1))
        rows = [(str(kd), *self.sample(str(kd), k)) for kd in kinds]
        T = max(len(r[1]) for r in rows)
        n_img = max(len(r[3]) for r in rows)
        ids = torch.zeros(size, T, dtype=torch.long)
        mask = torch.zeros(size, T, dtype=torch.long)
        labels = torch.full((size, T), -100, dtype=torch.long)
        scene_idx = torch.full((size, n_img), -1, dtype=torch.long)
        query = torch.zeros(size, T, dtype=torch.bool)
        for i, (_, toks, ans, sc, info) in enumerate(rows):
            ids[i, : len(toks)] = torch.tensor(toks)
            mask[i, : len(toks)] = 1
            for p in ans:
                labels[i, p] = toks[p]
            for p in info["query"]:
                query[i, p] = True
            scene_idx[i, : len(sc)] = torch.tensor(sc)
        return {
            "ids": ids,
            "mask": mask,
            "labels": labels,
            "scenes": scene_idx,
            "query": query,
            "kinds": [r[0] for r in rows],
            "k": [r[4].get("k", -1) for r in rows],
        }


# -- 4. training --------------------------------------------------------------------------------------
def _forward(model: nn.Module, feats: torch.Tensor, b: dict[str, Any]) -> torch.Tensor:
    """Flamingo forward from cached vision features: the perceiver, the conditioned LM. Logits (B, T, V)."""
    idx = b["scenes"]
    x = torch.zeros(*idx.shape, *feats.shape[1:])
    valid = idx >= 0
    x[valid] = feats[idx[valid]].float()
    vis = model.perceiver(x[:, :, None])  # (B, n_img, n_latents, d)
    for layer in model.lang_encoder._get_decoder_layers():
        layer.condition_vis_x(vis)
    model._condition_media_locations(b["ids"])
    try:
        return model.lang_encoder(input_ids=b["ids"], attention_mask=b["mask"], use_cache=False).logits
    finally:
        model.lang_encoder.clear_conditioned_layers()


def _loss_and_stats(logits: torch.Tensor, b: dict[str, Any]) -> tuple[torch.Tensor, dict[str, list[float]]]:
    # the token at position p is predicted from position p - 1
    pred_logits = logits[:, :-1]
    target = b["labels"][:, 1:]
    loss = nn.functional.cross_entropy(
        pred_logits.reshape(-1, pred_logits.shape[-1]), target.reshape(-1), ignore_index=-100
    )
    hit = pred_logits.argmax(-1) == target
    q = b["query"][:, 1:]
    stats: dict[str, list[float]] = {}
    for i, kind in enumerate(b["kinds"]):
        key = kind if kind != "paper" else f"paper_k{min(b['k'][i], 4)}"
        stats.setdefault(key, []).extend(hit[i][q[i]].float().tolist())
    return loss, stats


@dataclass
class TrainState:
    step: int = 0
    prompts: int = 0
    stage: int = 0
    seconds: float = 0.0
    acc: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


def train(
    work: str | Path,
    cfg: BundledConfig = BundledConfig(),
    max_seconds: float | None = None,
    init_from: str | Path | None = None,
) -> Generator[Progress, None, TrainState]:
    """Train (or resume) in `work`. Stops at cfg.max_prompts or after max_seconds of this call.

    `init_from`: an exported model folder to continue from when `work` has no checkpoint yet (the
    training state it recorded is continued; the optimizer starts afresh)."""
    from mfv_desktop.backends.openflamingo import OpenFlamingoFiles, load_flamingo
    from mfv_desktop.scenes import KINDS, split_kinds

    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    model_dir = work / "model"
    if not (model_dir / "mfv_model.json").is_file():
        build_small_model(model_dir, cfg.arch, model_id="mfv-bundled-openflamingo", vocab=vocabulary())
    model, processor, tokenizer = load_flamingo(OpenFlamingoFiles.from_folder(model_dir))
    train_kinds, _ = split_kinds(KINDS, cfg.n_novel, seed=0)
    size = cfg.arch.image_size
    yield Progress(0, 1, "rendering the scene pool (once)")
    pool = build_pool(work / "pool_train.npz", train_kinds, cfg.pool_train, cfg.seed, "train", size)
    novel = build_pool(work / "pool_novel.npz", KINDS, cfg.pool_novel, cfg.seed + 1, "novel", size)
    val = build_pool(work / "pool_val.npz", train_kinds, cfg.pool_val, cfg.seed + 2, "val", size)

    state_path = work / "state.json"
    ckpt_path = work / "checkpoint.pt"
    state = TrainState()
    vision_path = work / "vision.safetensors"
    perceiver_path = work / "perceiver.safetensors"
    if init_from is not None and not ckpt_path.is_file():
        from safetensors.torch import load_file, save_file

        init = Path(init_from)
        model.load_state_dict(
            {k: v.float() for k, v in load_file(str(init / "checkpoint.safetensors")).items()}, strict=False
        )
        for path, module in ((vision_path, model.vision_encoder), (perceiver_path, model.perceiver)):
            save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
        if (init / TRAINING_STATE).is_file():
            state = TrainState(**json.loads((init / TRAINING_STATE).read_text()))
    if vision_path.is_file():
        from safetensors.torch import load_file

        model.vision_encoder.load_state_dict(load_file(str(vision_path)))
    else:
        acc = yield from pretrain_vision(model, processor, [pool, novel], cfg.vision_steps, cfg.seed)
        from safetensors.torch import save_file

        save_file(
            {k: v.contiguous() for k, v in model.vision_encoder.state_dict().items()},
            str(vision_path),
            metadata={"patch_accuracy": f"{acc:.4f}"},
        )
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        state = TrainState(**json.loads(state_path.read_text()))
    for p in model.vision_encoder.parameters():
        p.requires_grad_(False)
    feats = vision_features(model, processor, pool["images"])
    val_feats = vision_features(model, processor, val["images"])
    if not ckpt_path.is_file():
        from safetensors.torch import load_file, save_file

        if perceiver_path.is_file():
            model.perceiver.load_state_dict(load_file(str(perceiver_path)))
        else:
            acc = yield from pretrain_perceiver(model, feats, pool["patches"], cfg.perceiver_steps, cfg.seed)
            save_file(
                {k: v.contiguous() for k, v in model.perceiver.state_dict().items()},
                str(perceiver_path),
                metadata={"latent_kind_accuracy": f"{acc:.4f}"},
            )
    trainable = [p for n, p in model.named_parameters() if not n.startswith("vision_encoder.")]
    for p in trainable:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=0.01, betas=(0.9, 0.98))
    if ckpt_path.is_file():
        opt.load_state_dict(ck["optimizer"])
    kind_names = list(KINDS)
    sampler = Sampler(tokenizer, pool["objects"], kind_names, seed=cfg.seed * 1000 + state.step, max_k=cfg.max_k)
    val_sampler = Sampler(tokenizer, val["objects"], kind_names, seed=10_000 + cfg.seed, max_k=cfg.max_k)
    model.train()
    started, last_ckpt = time.time(), time.time()
    base_seconds = state.seconds

    def save() -> None:
        state.seconds = base_seconds + time.time() - started
        with atomic_path(ckpt_path) as tmp:
            torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, tmp)
        state_path.write_text(json.dumps(asdict(state), indent=1))

    while state.prompts < cfg.max_prompts:
        if max_seconds is not None and time.time() - started > max_seconds:
            break
        mix = STAGES[state.stage]
        b = sampler.batch(mix, cfg.batch)
        warm = min(1.0, (state.step + 1) / 200)
        for g in opt.param_groups:
            g["lr"] = cfg.lr * warm
        logits = _forward(model, feats, b)
        loss, stats = _loss_and_stats(logits, b)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        state.step += 1
        state.prompts += cfg.batch
        for key, hits in stats.items():
            state.acc[key] = 0.98 * state.acc.get(key, 0.25) + 0.02 * float(np.mean(hits))
        goal = STAGE_GOAL[state.stage]
        if goal and state.acc.get(goal, 0) >= cfg.threshold and state.stage + 1 < len(STAGES):
            state.stage += 1
            state.history.append(
                {
                    "event": f"stage {state.stage}",
                    "step": state.step,
                    "prompts": state.prompts,
                    "seconds": round(base_seconds + time.time() - started),
                }
            )
        if state.step % cfg.eval_every == 0:
            ev = evaluate_pool(model, val_feats, val_sampler)
            state.history.append(
                {
                    "step": state.step,
                    "prompts": state.prompts,
                    "loss": round(loss.item(), 4),
                    "seconds": round(base_seconds + time.time() - started),
                    "stage": state.stage,
                    **ev,
                }
            )
            msg = " ".join(f"{k}={v:.2f}" for k, v in ev.items())
            yield Progress(
                state.prompts, cfg.max_prompts, f"stage {state.stage} loss {loss.item():.3f} {msg}", {"eval": ev}
            )
        if time.time() - last_ckpt > cfg.checkpoint_every_s:
            save()
            last_ckpt = time.time()
    save()
    return state


@torch.no_grad()
def evaluate_pool(model: nn.Module, feats: torch.Tensor, sampler: Sampler, n: int = 128) -> dict[str, float]:
    """Query accuracy on held-out pool scenes: the paper's prompts at K = 0, 1, 4 and the bridges."""
    was = model.training
    model.eval()
    out = {}
    for kind in ("named", "relate", "bridge"):
        b = sampler.batch({kind: 1.0}, n // 2)
        _, st = _loss_and_stats(_forward(model, feats, b), b)
        out[kind] = float(np.mean(st[kind]))
    for k in (0, 1, 4):
        b = sampler.batch({"paper": 1.0}, n, k=k)
        _, st = _loss_and_stats(_forward(model, feats, b), b)
        out[f"paper_k{k}"] = float(np.mean(st[f"paper_k{min(k, 4)}"]))
    model.train(was)
    return out


# -- 5. export ----------------------------------------------------------------------------------------
def export(work: str | Path, out: str | Path, model_id: str = "mfv-bundled-openflamingo") -> Path:
    """Write the trained model as a model folder: fp16 safetensors without OpenFlamingo's aliases."""
    import shutil

    from safetensors.torch import load_file, save_file

    from mfv_desktop.backends.openflamingo import MANIFEST, OpenFlamingoFiles, load_flamingo, unique_state_dict

    work, out = Path(work), Path(out)
    src = work / "model"
    model, _, _ = load_flamingo(OpenFlamingoFiles.from_folder(src))
    model.load_state_dict(torch.load(work / "checkpoint.pt", map_location="cpu", weights_only=True)["model"])
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "lm", ignore_errors=True)
    shutil.copytree(src / "lm", out / "lm")
    # the language model folder must hold weights for from_pretrained; the checkpoint overrides them
    lm_weights = out / "lm" / "model.safetensors"
    save_file(
        {k: v.half().contiguous() for k, v in load_file(str(lm_weights)).items()},
        str(lm_weights),
        metadata={"format": "pt"},
    )
    manifest = json.loads((src / MANIFEST).read_text())
    shutil.copy(src / manifest["clip_config"], out / manifest["clip_config"])
    save_file(
        {k: v.half().contiguous() for k, v in unique_state_dict(model).items()}, str(out / "checkpoint.safetensors")
    )
    manifest.update(model_id=model_id, checkpoint="checkpoint.safetensors", checkpoint_complete=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    if (work / "state.json").is_file():
        shutil.copy(work / "state.json", out / TRAINING_STATE)
    return out
