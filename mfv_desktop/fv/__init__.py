"""The science, torch only: hooks, mediation (mean activations, AIE), vectors, evaluation."""

from mfv_desktop.progress import Progress, within

from .evaluate import EvalResult, Intervention, Scores, evaluate, no_intervention, score
from .hooks import add_vector, patch_heads, record_heads
from .mediation import (
    AIEResult,
    Matched,
    MeanActivations,
    average_indirect_effect,
    matched_prompts,
    mean_head_activations,
)
from .vectors import (
    BiasMode,
    SweepResult,
    default_layer,
    function_vector,
    injection,
    layer_sweep,
    top_heads,
)

__all__ = [
    "AIEResult",
    "BiasMode",
    "EvalResult",
    "Intervention",
    "Matched",
    "MeanActivations",
    "Progress",
    "Scores",
    "SweepResult",
    "add_vector",
    "average_indirect_effect",
    "default_layer",
    "evaluate",
    "function_vector",
    "injection",
    "layer_sweep",
    "matched_prompts",
    "mean_head_activations",
    "no_intervention",
    "patch_heads",
    "record_heads",
    "score",
    "top_heads",
    "within",
]
