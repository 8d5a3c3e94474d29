"""Jobs: a typed spec in, a generator of Progress out, results written as files.

A job function takes its spec and returns a generator; it yields `Progress` (with partial results
for viewers) and returns a summary dict. Cancelling means no longer iterating: the generator is
closed at a yield, so work stops between batches and nothing half-written is left (files are
written whole, at the end, or as complete partial snapshots). `execute` wraps a job in a generator
that records a `run.json` beside its results (spec, status, timings, provenance, error); whoever
runs it watches its progress (see `mfv_desktop.progress`).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from mfv_desktop.files import atomic_write
from mfv_desktop.progress import Cancelled, Progress  # noqa: F401 (Cancelled: what `drive` raises)
from mfv_desktop.specs import JobSpec, ModelRef

from .results import summary_of

#: a job: progress yielded, its result (a dict, or a typed `results.JobResult`) returned
JobGen = Generator[Progress, None, Mapping[str, Any]]
R = TypeVar("R")
#: a job (or one of its stages) whose result has the type R
Gen = Generator[Progress, None, R]


class OnModel(TypedDict):
    """The model fields a job passes to the jobs it runs (`**on_model`), so every stage runs on its model."""

    model: ModelRef
    batch_size: int


__all__ = ["Cancelled", "JobGen", "JobSpec", "execute", "write_json"]


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(path: Path, data: Any) -> Path:
    return atomic_write(path, json.dumps(_plain(data), indent=1, sort_keys=True, default=str))


def execute(spec: JobSpec, job: Callable[[Any], JobGen], out: Path | None) -> Gen[dict[str, Any]]:
    """The job as a generator that records run.json in `out` (None: a job whose results all go to
    the store records nothing beside them): it yields the job's Progress and returns its summary.
    Closed at a yield (cancelled), it records "cancelled"; Ctrl+C (KeyboardInterrupt) records
    "interrupted"; an exception "failed" with its traceback. A spec that cannot run is refused at the
    first step (SpecError), with nothing written."""
    spec.validate()
    record: dict[str, Any] = {"spec": spec.to_json(), "status": "running", "started": time.time()}

    def save() -> None:
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "run.json", record)

    save()
    try:
        summary = summary_of((yield from job(spec)) or {})
    except (GeneratorExit, KeyboardInterrupt) as e:
        record.update(status="cancelled" if isinstance(e, GeneratorExit) else "interrupted", finished=time.time())
        save()
        raise
    except BaseException as e:
        record.update(
            status="failed", finished=time.time(), error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()
        )
        save()
        raise
    record.update(
        status="done", finished=time.time(), seconds=round(time.time() - record["started"], 3), result=summary
    )
    save()
    return summary
