"""Training the bundled model, as a job (resumable: it continues from its work folder)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .base import JobGen, JobSpec


@dataclass(frozen=True)
class TrainBundledSpec(JobSpec):
    kind = "train-bundled"
    work: str = "runs/bundled-training"
    #: stop after this many minutes of this call (the run resumes where it stopped)
    minutes: float | None = None
    #: total prompt budget (None: the config's)
    max_prompts: int | None = None
    seed: int = 0
    #: when set, write the trained model folder here at the end
    export: str = ""
    #: an exported model folder to continue training from (when the work folder is new)
    init_from: str = ""

    @property
    def out(self) -> str:
        return self.work


def run_train_bundled(spec: TrainBundledSpec) -> JobGen:
    from mfv_desktop.backends.bundled import BundledConfig, export, train

    cfg = BundledConfig(seed=spec.seed)
    if spec.max_prompts is not None:
        cfg = replace(cfg, max_prompts=spec.max_prompts)
    state = yield from train(spec.work, cfg, None if spec.minutes is None else spec.minutes * 60,
                             spec.init_from or None)
    if spec.export:
        export(spec.work, spec.export)
    last = next((h for h in reversed(state.history) if "loss" in h), {})
    return {"prompts": state.prompts, "stage": state.stage, "seconds": round(state.seconds), "last_eval": last,
            "exported": spec.export or None}
