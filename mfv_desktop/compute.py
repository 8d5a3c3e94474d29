"""Where the long jobs compute: the user's choice, kept apart from every job's spec (a job's numbers
are the same wherever it runs). No torch, no Ray until a job runs on Ray.

- local: in this process (the default; Ray is never imported);
- ray: on Ray workers (jobs/cluster.py), one per GPU, or per CPU for a model on the CPU: on a Ray
  started on this machine alone (`address` None), or on a cluster (`auto`, HOST:PORT).

The CLI's options (`mfv --executor ray --ray-address HOST:PORT --workers N`) and the GUI's Settings >
Compute both make a `Compute`; `computed_on` runs a job there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from mfv_desktop.errors import BackendError
from mfv_desktop.progress import Progress

T = TypeVar("T")
EXECUTORS = ("local", "ray")
RAY_MISSING = (
    "the Ray executor needs Ray, which is not installed: pip install 'mfv_desktop[cluster]' "
    "(bash installer/setup.sh installs it), or choose the local executor"
)


@dataclass(frozen=True)
class Compute:
    executor: Literal["local", "ray"] = "local"
    #: the Ray to join: "auto" (the one this machine belongs to) or HOST:PORT; None starts one here
    address: str | None = None
    #: Ray workers to start; None: one per GPU when the model runs on a GPU, else one per CPU
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(f"unknown executor {self.executor!r}: use local or ray")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"{self.workers} workers: give 1 or more")

    def describe(self) -> str:
        if self.executor == "local":
            return "this process"
        n = f"{self.workers} workers" if self.workers else "a worker per GPU or CPU"
        return f"Ray at {self.address} ({n})" if self.address else f"Ray on this machine ({n})"


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def ray_module() -> Any:
    """Ray, or BackendError saying how to install it. Imported here first, it uses the Ray token at hand
    (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token) unless RAY_AUTH_MODE says otherwise: Ray
    reads its mode once, on import, and looks for the token by itself only when joining `auto`."""
    if "ray" not in sys.modules and "RAY_AUTH_MODE" not in os.environ:
        path = os.environ.get("RAY_AUTH_TOKEN_PATH") or os.path.expanduser("~/.ray/auth_token")
        if os.environ.get("RAY_AUTH_TOKEN") or os.path.isfile(path):
            os.environ["RAY_AUTH_MODE"] = "token"
    try:
        import ray
    except ImportError:
        raise BackendError(RAY_MISSING) from None
    return ray


def computed_on(gen: Generator[Progress, None, T], compute: Compute | None) -> Generator[Progress, None, T]:
    """A job (a generator of Progress) run where `compute` says: as it is for local (or None), else
    with its batches on Ray workers, stopped when the job ends or is cancelled."""
    if compute is None or compute.executor == "local":
        return gen
    if not ray_available():
        raise BackendError(RAY_MISSING)
    from mfv_desktop.fv.shards import on_executor
    from mfv_desktop.jobs.cluster import RayExecutor

    return on_executor(gen, RayExecutor(compute.address, compute.workers))


def add_compute_options(parser: Any) -> None:
    """`mfv`'s options for where jobs compute (on an argparse parser)."""
    g = parser.add_argument_group("compute", "where AIE, preview, sweeps, evaluations and reports compute")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: in this process (default); ray: on Ray workers, one per GPU (or per CPU for a CPU model)",
    )
    g.add_argument(
        "--ray-address", metavar="auto|HOST:PORT", help="the Ray cluster to join (default: start Ray on this machine)"
    )
    g.add_argument("--workers", type=int, metavar="N", help="Ray workers to start (default: one per GPU or CPU)")


def compute_of(args: Any) -> Compute:
    """The Compute that `mfv`'s options (add_compute_options) say."""
    if args.executor == "local" and (args.ray_address or args.workers):
        raise ValueError("--ray-address and --workers are for --executor ray")
    return Compute(args.executor, args.ray_address, args.workers)
