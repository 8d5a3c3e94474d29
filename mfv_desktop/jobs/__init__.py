"""Every long computation as a job: a typed spec in, a generator of progress out (see base.py)."""

from collections.abc import Callable

from mfv_desktop.specs import ModelRef, spec_from_json, spec_to_json

from .base import Cancelled, JobGen, JobSpec, execute, write_json
from .chain import ChainSpec, run_chain
from .data import GenerateSpec, TasksSpec, run_generate, run_tasks
from .finetune import run_finetune
from .mediation import run_aie, run_preview
from .report import ReportSpec, run_report
from .science import (
    AIESpec,
    EvaluateSpec,
    ExtractSpec,
    PreviewSpec,
    SweepSpec,
    run_evaluate,
    run_extract,
    run_sweep,
)
from .vectors import (
    AnalogySpec,
    ApplySpec,
    ComposeSpec,
    FinetuneSpec,
    run_analogy,
    run_apply,
    run_compose,
)

#: (the jobs that read through a source take it as `io=`, see stored.SINK_KINDS)
_JOBS: list[tuple[type[JobSpec], Callable[..., JobGen]]] = [
    (GenerateSpec, run_generate),
    (TasksSpec, run_tasks),
    (AIESpec, run_aie),
    (PreviewSpec, run_preview),
    (ExtractSpec, run_extract),
    (SweepSpec, run_sweep),
    (EvaluateSpec, run_evaluate),
    (ChainSpec, run_chain),
    (FinetuneSpec, run_finetune),
    (ComposeSpec, run_compose),
    (AnalogySpec, run_analogy),
    (ApplySpec, run_apply),
    (ReportSpec, run_report),
]
#: job kind -> (spec class, job function): the GUI and the CLI both start jobs through this
JOBS = {spec.kind: (spec, fn) for spec, fn in _JOBS}

__all__ = [
    "AIESpec",
    "AnalogySpec",
    "ApplySpec",
    "Cancelled",
    "ChainSpec",
    "ComposeSpec",
    "EvaluateSpec",
    "ExtractSpec",
    "FinetuneSpec",
    "GenerateSpec",
    "JOBS",
    "JobGen",
    "JobSpec",
    "ModelRef",
    "PreviewSpec",
    "ReportSpec",
    "SweepSpec",
    "TasksSpec",
    "execute",
    "run_aie",
    "run_analogy",
    "run_apply",
    "run_chain",
    "run_compose",
    "run_evaluate",
    "run_extract",
    "run_finetune",
    "run_generate",
    "run_preview",
    "run_report",
    "run_sweep",
    "run_tasks",
    "spec_from_json",
    "spec_to_json",
    "write_json",
]
