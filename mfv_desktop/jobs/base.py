"""Jobs: a typed spec in, a generator of Progress out, results written as files.

A job function takes its spec and returns a generator; it yields `Progress` (with partial results
for viewers) and returns a summary dict. Cancelling means no longer iterating: the generator is
closed at a yield, so work stops between batches and nothing half-written is left (files are
written whole, at the end, or as complete partial snapshots). `execute` wraps a job in a generator
that records a `run.json` beside its results (spec, status, timings, provenance, error); whoever
runs it watches its progress (see `mfv_desktop.progress`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Generator, Iterator

from mfv_desktop.errors import SpecError
from mfv_desktop.progress import Cancelled, Progress  # noqa: F401 (Cancelled: what `drive` raises)

JobGen = Generator[Progress, None, dict]

#: the smallest value a field of this name may take, in every spec that has one (each number of
#: a tuple; None, where a field allows it, means "the default")
MINIMUM: dict[str, int] = {
    "batch_size": 1, "train_batch_size": 1, "n_prompts": 1, "n_aie": 1, "n_finetune": 2, "n_extract": 1,
    "n_test": 1, "n_scenes": 1, "max_per_relation": 1, "max_prompts": 1, "epochs": 1, "top_k": 1, "top": 1,
    "k": 0, "ks": 0, "layer": 0, "layers": 0, "heads": 0, "seed": 0, "canvas": 1, "n_novel": 0,
}
#: fields that must be above zero
POSITIVE = ("lr", "temperature", "val_fraction", "minutes")
#: the values a field of this name may take
CHOICES: dict[str, tuple[str, ...]] = {
    "corruption": ("paper", "todd"), "method": ("fast", "reference"), "bias": ("per_head", "none"),
    "init": ("extracted", "random"), "weighting": ("probability", "softmax", "equal"),
    "task_kind": ("clean", "corrupted", "zeroshot"),
}
#: fields that may not be empty
REQUIRED = ("relations",)


def _numbers(value: Any) -> Iterator[Any]:
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


@dataclass(frozen=True)
class JobSpec:
    """Base of every job spec: plain, JSON-serialisable fields only."""

    kind: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **_plain(dataclasses.asdict(self))}

    def validate(self) -> None:
        """Refuse values no run can use, before a run exists: SpecError names the field and the fix.
        Numbers are finite and in range (MINIMUM, POSITIVE), names are known (CHOICES), lists that
        say what to do are not empty (REQUIRED). Checks that need the model's geometry (a layer
        below its number of layers) happen when the job has loaded its model, before any work."""
        for f in dataclasses.fields(self):
            name, value = f.name, getattr(self, f.name)
            where = f"{self.kind}: {name} (--{name.replace('_', '-')})"
            for x in _numbers(value):
                if not math.isfinite(x):
                    raise SpecError(f"{where} is {x}; give a finite number")
                if name in MINIMUM and x < MINIMUM[name]:
                    raise SpecError(f"{where} is {x}; it must be at least {MINIMUM[name]}")
                if name in POSITIVE and x <= 0:
                    raise SpecError(f"{where} is {x}; it must be above 0")
            if name in CHOICES and value not in CHOICES[name]:
                raise SpecError(f"{where} is {value!r}; use {' or '.join(CHOICES[name])}")
            if name in REQUIRED and not value:
                raise SpecError(f"{where} is empty; name at least one")


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_plain(data), indent=1, sort_keys=True, default=str))
    tmp.replace(path)
    return path


def execute(spec: JobSpec, job: Callable[[Any], JobGen], out: Path) -> JobGen:
    """The job as a generator that records run.json in `out`: it yields the job's Progress and returns
    its summary. Closed at a yield (cancelled), it records "cancelled"; Ctrl+C (KeyboardInterrupt)
    records "interrupted"; an exception "failed" with its traceback. A spec that cannot run is
    refused at the first step (SpecError), with nothing written."""
    spec.validate()
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"spec": spec.to_json(), "status": "running", "started": time.time()}
    write_json(out / "run.json", record)
    try:
        summary = (yield from job(spec)) or {}
    except (GeneratorExit, KeyboardInterrupt) as e:
        record.update(status="cancelled" if isinstance(e, GeneratorExit) else "interrupted", finished=time.time())
        write_json(out / "run.json", record)
        raise
    except BaseException as e:
        record.update(status="failed", finished=time.time(), error=f"{type(e).__name__}: {e}",
                      traceback=traceback.format_exc())
        write_json(out / "run.json", record)
        raise
    record.update(status="done", finished=time.time(), seconds=round(time.time() - record["started"], 3),
                  result=summary)
    write_json(out / "run.json", record)
    return summary
