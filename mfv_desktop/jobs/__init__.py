"""Every long computation as a job: a typed spec in, a generator of progress out (see base.py)."""

from .base import Cancelled, JobGen, JobSpec, execute, write_json
from .card import MeasureSpec, run_measure
from .chain import ChainSpec, run_chain
from .data import GenerateSpec, TasksSpec, run_generate, run_tasks
from .science import AIESpec, EvaluateSpec, ExtractSpec, SweepSpec, run_aie, run_evaluate, run_extract, run_sweep
from .training import TrainBundledSpec, run_train_bundled

#: job kind -> (spec class, job function): the GUI and the CLI both start jobs through this
JOBS = {
    spec.kind: (spec, fn)
    for spec, fn in [
        (GenerateSpec, run_generate), (TasksSpec, run_tasks), (AIESpec, run_aie), (ExtractSpec, run_extract),
        (SweepSpec, run_sweep), (EvaluateSpec, run_evaluate), (ChainSpec, run_chain),
        (TrainBundledSpec, run_train_bundled), (MeasureSpec, run_measure),
    ]
}

__all__ = [
    "JOBS", "AIESpec", "MeasureSpec", "Cancelled", "ChainSpec", "EvaluateSpec", "ExtractSpec", "GenerateSpec", "JobGen", "JobSpec",
    "SweepSpec", "TasksSpec", "TrainBundledSpec", "execute", "run_aie", "run_chain", "run_measure", "run_evaluate", "run_extract", "run_generate",
    "run_sweep", "run_tasks", "run_train_bundled", "write_json",
]
