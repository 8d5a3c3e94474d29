"""The long jobs' batches on Ray actors: every GPU of a workstation, or the machines of a cluster.

`RayExecutor` is the executor of fv.shards that `compute.Compute(executor="ray")` chooses: a worker
(a Ray actor) per GPU, or per CPU where the model runs on the CPU, each holding the model, loaded
from the same path as here (a shared filesystem is assumed) and checked by hash (a worker whose
files differ refuses, naming the file). Batches go to whichever worker is free, and come back in
order: the job adds them up as it would in one process, so its numbers are the same. A worker that
dies (killed, its machine lost) has its batches computed again by a worker started in its place;
closing the executor (the job ended, was cancelled or interrupted) stops every worker.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from typing import Any

from mfv_desktop.compute import ray_module
from mfv_desktop.errors import BackendError
from mfv_desktop.fv.shards import BatchFn, Shard

log = logging.getLogger("mfv_desktop.jobs")

#: batches queued on each worker at once (one computing, one waiting: no worker idles between two)
IN_FLIGHT = 2
#: workers started in place of dead ones, per job and worker, before the job gives up
RESTARTS_PER_WORKER = 3


#: the address this process is connected to Ray at ("" for a Ray it started itself)
_connected: list[str] = []


def connect(address: str | None, num_cpus: int | None = None) -> Any:
    """Ray, connected: to `address`, or to a Ray started in this process on this machine alone (never a
    cluster already running here; loopback, no dashboard). Connected to the same already, the connection
    is kept; to another (the setting changed), it is closed first."""
    ray = ray_module()
    if ray.is_initialized() and _connected and _connected[0] != (address or ""):
        ray.shutdown()
    if not ray.is_initialized():
        quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        if address is None:
            ray.init(address="local", num_cpus=num_cpus, _node_ip_address="127.0.0.1", **quiet)
        else:
            try:
                ray.init(address=address, **quiet)
            except ConnectionError as e:
                raise BackendError(
                    f"cannot join the Ray cluster at {address} ({e}): start it with `ray start --head` there, "
                    "and give this machine the cluster's token (README: Scaling out on Ray)"
                ) from None
        _connected[:] = [address or ""]
    return ray


class ShardWorker:
    """One worker: loads the model on first use, checks its files, computes batches. (A Ray actor:
    `ray.remote(ShardWorker)`.)"""

    def __init__(self, key: tuple[str, str, str], files: dict[str, str]) -> None:
        self.key, self.files = key, files
        self.backend: Any = None

    def ready(self) -> dict[str, Any]:
        """Load the model and check that its files are the driver's; where this worker runs."""
        if self.backend is None:
            from mfv_desktop.backends import load_backend

            backend = load_backend(*self.key)
            here = backend.provenance()["files"]
            for name in sorted(set(here) | set(self.files)):
                if here.get(name) != self.files.get(name):
                    raise BackendError(
                        f"worker on {socket.gethostname()}: model file {name} of {self.key[0]} "
                        f"{_differs(here.get(name), self.files.get(name))}: every machine must read the "
                        "same model files at the same path (a shared filesystem)"
                    )
            self.backend = backend
        return {"host": socket.gethostname(), "pid": os.getpid(), "device": str(self.backend.device)}

    def run(self, fn: BatchFn, tasks: list, args: dict[str, Any]) -> Shard:
        self.ready()
        return fn(self.backend, tasks, **args)


def _differs(here: str | None, driver: str | None) -> str:
    if here is None:
        return "is missing here"
    if driver is None:
        return "is here but not where the job was started"
    return f"differs (sha256 {here[:12]}… here, {driver[:12]}… where the job was started)"


class RayExecutor:
    """fv.shards' executor on Ray actors (see the module's doc)."""

    def __init__(self, address: str | None = None, workers: int | None = None, num_cpus: int | None = None) -> None:
        self.address, self.wanted, self.num_cpus = address, workers, num_cpus
        self.actors: list[Any] = []
        self.key: tuple[str, str, str] | None = None
        self.files: dict[str, str] = {}
        self.started_s = 0.0  # seconds to connect to Ray and have the workers hold the model
        #: batches computed by workers, and computed again because a worker died (this job)
        self.computed = self.redone = 0
        self.restarts = 0

    @property
    def workers(self) -> int:
        return len(self.actors)

    # -- workers ---------------------------------------------------------------------------------
    def _count(self, ray: Any, on_gpu: bool) -> int:
        if self.wanted:
            return self.wanted
        res = ray.cluster_resources()
        n = int(res.get("GPU", 0)) if on_gpu else int(res.get("CPU", 1))
        if n < 1:
            raise BackendError("the Ray cluster has no GPU for a model on the GPU: choose the CPU, or add GPU workers")
        return n

    def _spawn(self, ray: Any) -> Any:
        assert self.key is not None
        on_gpu = self.key[1] == "cuda"
        actor = ray.remote(ShardWorker).options(num_cpus=1, num_gpus=1 if on_gpu else 0)
        return actor.remote(self.key, self.files)

    def start(self, backend: Any) -> None:
        """Workers holding `backend`'s model (kept when they already do): on the device type and in the
        precision it runs in here; a worker on a GPU uses the one Ray gives it."""
        from mfv_desktop.backends import DTYPES
        from mfv_desktop.backends.loading import loaded_as

        loaded = loaded_as(backend)
        if loaded is None:
            raise BackendError(f"{backend.model_id} was not loaded by reference (load_backend): workers cannot load it")
        dtype = next(name for name, dt in DTYPES.items() if dt == backend.dtype)
        key = (loaded[0], "cuda" if backend.device.type == "cuda" else str(backend.device), dtype)
        if key == self.key and self.actors:
            return
        t = time.perf_counter()
        ray = connect(self.address, self.num_cpus)
        self.close()
        self.key, self.files = key, backend.provenance()["files"]
        self.actors = [self._spawn(ray) for _ in range(self._count(ray, key[1] == "cuda"))]
        try:
            where = ray.get([a.ready.remote() for a in self.actors])
        except ray.exceptions.RayTaskError as e:  # a worker refused (other files) or could not load the model
            self.close()
            raise (e.cause if isinstance(e.cause, Exception) else BackendError(str(e))) from None
        except ray.exceptions.RayActorError as e:
            self.close()
            raise BackendError(f"a Ray worker died while loading {key[0]} (out of memory?): {e}") from None
        self.started_s = time.perf_counter() - t
        hosts = collections.Counter(w["host"] for w in where)
        log.info("%d Ray workers hold %s (%s)", len(where), key[0], ", ".join(f"{h}: {n}" for h, n in hosts.items()))

    def _replace(self, ray: Any, dead: Any) -> None:
        """A worker in place of a dead one (Ray places it where there is room)."""
        self.restarts += 1
        if self.restarts > RESTARTS_PER_WORKER * max(1, len(self.actors)):
            raise BackendError(f"Ray workers died {self.restarts} times in this job: see the Ray logs (ray status)")
        self.actors = [a for a in self.actors if a is not dead]
        ray.kill(dead)
        self.actors.append(self._spawn(ray))

    def map(self, backend: Any, fn: BatchFn, chunks: Sequence[list], args: dict[str, Any]) -> Iterator[Shard]:
        self.start(backend)
        ray = ray_module()
        shared = ray.put(args)  # once per map: every batch's call refers to it
        todo = collections.deque(range(len(chunks)))
        pending: dict[Any, tuple[int, Any]] = {}  # call -> (batch, worker)
        results: dict[int, Shard] = {}
        given = 0  # batches given back, in order
        try:
            while given < len(chunks):
                for actor in list(self.actors):
                    while todo and sum(a is actor for _, a in pending.values()) < IN_FLIGHT:
                        i = todo.popleft()
                        pending[actor.run.remote(fn, chunks[i], shared)] = (i, actor)
                done, _ = ray.wait(list(pending), num_returns=1)
                for call in done:
                    i, actor = pending.pop(call)
                    try:
                        results[i] = ray.get(call)
                        self.computed += 1
                    except ray.exceptions.RayActorError:  # the worker died: its batches go to the others
                        log.warning("a Ray worker died; its batch %d is computed again", i)
                        self.redone += 1
                        todo.appendleft(i)
                        if any(a is actor for a in self.actors):
                            self._replace(ray, actor)
                    except ray.exceptions.RayTaskError as e:  # the computation's own error, as raised there
                        raise (e.cause if isinstance(e.cause, Exception) else RuntimeError(str(e))) from None
                while given in results:
                    yield results.pop(given)
                    given += 1
        finally:  # stopped half-way: what is queued is dropped (close() stops what runs)
            for call in pending:
                try:
                    ray.cancel(call)
                except Exception:  # noqa: BLE001 - Ray already shut down: nothing left to cancel
                    pass

    def close(self) -> None:
        """Stop every worker (at once: a batch half-way is dropped)."""
        if self.actors:
            ray = ray_module()
            for a in self.actors:
                ray.kill(a)
        self.actors = []
        self.key = None
