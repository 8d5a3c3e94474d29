"""The paper's five generated scene sets (extract, finetune, test, novel objects, diagonal relations):
the held-out kinds and one GeneratorSpec per set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .generator import GeneratorSpec
from .model import SceneError
from .objects import KINDS


def split_kinds(kinds: Sequence[str], n_novel: int, seed: int = 0) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Hold out `n_novel` kinds (chosen with `seed`) as "novel objects"; both keep the given order."""
    kinds = tuple(kinds)
    if not 0 < n_novel < len(kinds):
        raise SceneError(
            f"n_novel must be between 1 and {len(kinds) - 1} (there are {len(kinds)} kinds), got {n_novel}"
        )
    held = set(np.random.default_rng(seed).choice(len(kinds), n_novel, replace=False).tolist())
    return (
        tuple(k for j, k in enumerate(kinds) if j not in held),
        tuple(k for j, k in enumerate(kinds) if j in held),
    )


#: scenes per split in the paper (novel: held-out kinds; diagonal: composite relations)
PAPER_SPLIT_SIZES: dict[str, int] = {"extract": 4000, "finetune": 1000, "test": 1000, "novel": 1000, "diagonal": 1000}


def paper_splits(
    seed: int = 0, kinds: Sequence[str] = KINDS, n_novel: int = 8, scale: float = 1.0, **settings: Any
) -> dict[str, GeneratorSpec]:
    """Generator specs for the paper's five scene sets; `scale` shrinks them (e.g. 0.01 to try).

    The novel set uses the `n_novel` held-out kinds, the others the rest. `settings` are other
    GeneratorSpec fields (canvas, sizes, ...) shared by all five.
    """
    train, novel = split_kinds(kinds, n_novel, seed)
    return {
        name: GeneratorSpec(
            n_scenes=max(1, round(n * scale)),
            seed=seed,
            kinds=novel if name == "novel" else train,
            diagonal=name == "diagonal",
            split=name,
            **settings,
        )
        for name, n in PAPER_SPLIT_SIZES.items()
    }
