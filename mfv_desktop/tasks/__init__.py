"""In-context tasks from scenes (no torch, no Qt)."""

from .model import (
    OPENFLAMINGO_TEMPLATE,
    PromptTemplate,
    Shot,
    Task,
    TaskError,
    TaskKind,
    TaskSet,
    TaskSpec,
)
from .sampling import build_task_set, check_paired, pair_key, scenes_hash

__all__ = [
    "OPENFLAMINGO_TEMPLATE",
    "PromptTemplate",
    "Shot",
    "Task",
    "TaskError",
    "TaskKind",
    "TaskSet",
    "TaskSpec",
    "build_task_set",
    "check_paired",
    "pair_key",
    "scenes_hash",
]
