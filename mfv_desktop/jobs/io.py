"""Where a job's inputs come from (a source) and where its results go (a sink).

A job names its inputs by reference, parsed here and nowhere else (`parse_ref`):
`dataset:NAME` (a data set of the store), `vector:ID` (a store vector), `aie:ID` (a store AIE
result, one relation), or a path (a scene-set folder, a vector file, an AIE job's output folder).
The `Source` reads them: from the store, hash-checked, or from files, checked. A store reference
without a store is refused, naming the option that opens one.

The sink takes the results that are records: AIE results (matrix, mean activations, metadata),
function vectors and evaluation rows. `FolderSink` writes them as files into the job's output
folder (headless `--out DIR`: the files as they have always been); `StoreSink` adds them to the
store as rows and content-addressed artifacts, directly, with no file in between. Both have a
`folder` where a job writes what is not a record (tables, reports, resume checkpoints): for a
store run that is the run's folder, made only when something is written there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mfv_desktop.errors import SpecError
from mfv_desktop.scenes import Scene, load_scene_set, path_part

if TYPE_CHECKING:
    from mfv_desktop.fv.vector_file import FunctionVector
    from mfv_desktop.store import Store
    from mfv_desktop.store.prompts import Answer
    from mfv_desktop.tasks import PromptTemplate, TaskSet

#: an AIE relation's per-prompt effects for a sink: (corrupted task set's hash, prompt indices in
#: it, effects (n, layers, heads))
PromptEffectsIn = tuple[str, np.ndarray, np.ndarray]

DATASET, VECTOR, AIE, PATH = "dataset", "vector", "aie", "path"
PREFIXES = (DATASET, VECTOR, AIE)


@dataclass(frozen=True)
class Ref:
    """A parsed input reference: `kind` is dataset, vector, aie or path; `id` the store id (vector, aie)."""

    kind: str
    value: str
    id: int | None = None

    def __str__(self) -> str:
        return self.value if self.kind == PATH else f"{self.kind}:{self.value}"


def parse_ref(text: str | Path) -> Ref:
    """`dataset:NAME`, `vector:ID`, `aie:ID`, or a path (anything else)."""
    text = str(text)
    prefix, sep, rest = text.partition(":")
    if not sep or prefix not in PREFIXES:
        return Ref(PATH, text)
    if prefix == DATASET:
        return Ref(DATASET, rest)
    try:
        return Ref(prefix, rest, int(rest))
    except ValueError:
        example = "vector:3 (see `mfv vectors`)" if prefix == VECTOR else "aie:3 (see `mfv results`)"
        raise SpecError(
            f"{text!r}: a store {'vector' if prefix == VECTOR else 'AIE result'} is named {prefix}:ID, e.g. {example}"
        ) from None


def dataset_ref(name: str) -> str:
    return f"{DATASET}:{name}"


def vector_ref(vector_id: int) -> str:
    return f"{VECTOR}:{vector_id}"


def aie_ref(aie_id: int) -> str:
    return f"{AIE}:{aie_id}"


def is_store_ref(text: str | Path) -> bool:
    return parse_ref(text).kind != PATH


# -- what sources give ----------------------------------------------------------------------------
@dataclass
class Scenes:
    """A scene set read once: the scenes (image paths as stored) and the folder relative paths
    resolve against."""

    scenes: list[Scene]
    root: Path


@dataclass
class LoadedVector:
    """A function vector read from its source: the vector, its file's sha256, the reference it was
    read by, and the file's bytes (a sink adds parts given as files to the store from these)."""

    fv: FunctionVector
    sha256: str
    ref: str
    data: bytes
    store_id: int | None = None


@dataclass
class AIEInput:
    """One relation's AIE result for extraction: matrix, mean activations, metadata, and where from."""

    relation: str
    aie: np.ndarray
    mean: np.ndarray
    meta: dict[str, Any]
    where: str


class Source:
    """Reads a job's inputs: store references from `store` (None: files only)."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store
        self._scenes: dict[str, Scenes] = {}
        self.loaded: dict[str, LoadedVector] = {}  # sha256 -> what was read

    def _need_store(self, ref: Ref) -> Store:
        if self.store is None:
            raise SpecError(
                f"{ref} names the store's {ref.kind}; run with --store DATA_FOLDER (or give a "
                f"{'scene-set folder' if ref.kind == DATASET else 'file or folder'})"
            )
        return self.store

    def scenes(self, ref: str | Path) -> Scenes:
        """A scene set (a data set of the store, or a scene-set folder), read once per source."""
        key = str(ref)
        if key not in self._scenes:
            r = parse_ref(key)
            if r.kind == DATASET:
                from mfv_desktop.store.results import dataset_scenes

                store = self._need_store(r)
                self._scenes[key] = Scenes(dataset_scenes(store, r.value), store.data_dir)
            else:
                self._scenes[key] = Scenes(load_scene_set(key), Path(key))
        return self._scenes[key]

    def vector(self, ref: str | Path) -> LoadedVector:
        """A function vector (a store vector, hash-checked; or a vector file, checked whole)."""
        from mfv_desktop.fv.vector_file import FunctionVector

        r = parse_ref(ref)
        if r.kind == VECTOR:
            from mfv_desktop.store.results import read_vector_bytes

            assert r.id is not None
            from mfv_desktop.store.vectors import get_vector

            store = self._need_store(r)
            data, digest = read_vector_bytes(store, r.id)
            fv, store_id = FunctionVector.from_bytes(data, str(r)), r.id
            # the store's row holds the vector's defaults (a user can set them: the Layer sweep tab's
            # "Use this layer and strength"); the file keeps those it was made with
            row = get_vector(store, r.id)
            fv.layer, fv.strength = int(row["layer"]), float(row["strength"])
        elif r.kind == PATH:
            fv = FunctionVector.load(r.value)  # checks the file whole; BackendError names it
            data = Path(r.value).read_bytes()
            digest, store_id = hashlib.sha256(data).hexdigest(), None
        else:
            raise SpecError(f"{ref} is not a function vector: give vector:ID or a vector file")
        loaded = LoadedVector(fv, digest, str(ref), data, store_id)
        self.loaded[digest] = loaded
        return loaded

    def _run_aie(self, folder: Path, relation: str) -> int | None:
        """The AIE result id of `relation` when `folder` is an AIE run's folder in this store."""
        if self.store is None:
            return None
        try:
            rel = folder.resolve().relative_to(self.store.runs_dir.resolve())
            run_id = int(rel.parts[0]) if len(rel.parts) == 1 else None
        except (ValueError, OSError):
            return None
        if run_id is None:
            return None
        from mfv_desktop.store.results import find_aie_result

        return find_aie_result(self.store, run_id, relation)

    def aie(self, ref: str | Path, relation: str) -> AIEInput:
        """One relation's AIE result: `aie:ID` from the store (its artifacts checked against their
        hashes), or an AIE job's output folder (its relation's files)."""
        r = parse_ref(ref)
        if r.kind == AIE:
            from mfv_desktop.store.results import read_aie_result

            assert r.id is not None
            res = read_aie_result(self._need_store(r), r.id)
            if res.relation != relation:
                raise SpecError(
                    f"AIE result {r.id} is for relation '{res.relation}', not '{relation}': "
                    f"extract with --relation {res.relation}"
                )
            return AIEInput(relation, res.aie, res.mean, res.meta, str(r))
        if r.kind != PATH:
            raise SpecError(f"{ref} is not an AIE result: give aie:ID or an AIE job's output folder")
        stored = self._run_aie(Path(r.value), relation)
        if stored is not None:  # a run folder of this store: its results are rows, read from the store
            return self.aie(aie_ref(stored), relation)
        from safetensors import safe_open
        from safetensors.numpy import load_file

        folder = Path(r.value) / path_part(relation)
        if not (folder / "aie.safetensors").is_file():
            raise FileNotFoundError(f"no AIE results for relation '{relation}' in {r.value}: run `mfv aie` first")
        with safe_open(str(folder / "aie.safetensors"), framework="np") as f:
            meta = json.loads((f.metadata() or {}).get("meta", "{}"))
        return AIEInput(
            relation,
            load_file(str(folder / "aie.safetensors"))["aie"],
            load_file(str(folder / "mean_activations.safetensors"))["mean"],
            meta,
            str(folder),
        )


# -- sinks ------------------------------------------------------------------------------------------
def save_arrays(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any], dtype: Any = np.float32) -> None:
    """Arrays as a safetensors file with `meta` as JSON in its header, written whole, then renamed: a
    crash never leaves half a file. `dtype` None keeps each array's own."""
    from safetensors.numpy import save_file

    from mfv_desktop.files import atomic_path

    with atomic_path(path) as tmp:
        save_file(
            {k: np.ascontiguousarray(v, dtype=dtype or np.asarray(v).dtype) for k, v in arrays.items()},
            str(tmp),
            metadata={"meta": json.dumps(meta, sort_keys=True, default=str)},
        )


@dataclass
class FolderSink:
    """Results as files in `folder` (the headless `--out DIR`)."""

    folder: Path
    #: the files a job wrote that a recorded run takes in afterwards (unused headless)
    written: list[Path] = field(default_factory=list)

    def finished_aie(self, relation: str, key: dict[str, Any]) -> dict | None:
        """The summary of a relation this job finished before with the same key (prompts, model), else None."""
        folder = self.folder / path_part(relation)
        try:
            meta = json.loads((folder / "aie.json").read_text())
        except (OSError, ValueError):
            return None
        prov = meta.get("provenance", {})
        same = (
            all(meta.get(k, prov.get(k)) == v for k, v in key.items())
            and (folder / "aie.safetensors").is_file()
            and (folder / "mean_activations.safetensors").is_file()
        )
        if not same:
            return None
        return {k: meta[k] for k in ("n_prompts", "base_prob", "max", "argmax", "clean_accuracy", *AVERAGING_KEYS)}

    def aie_result(
        self,
        relation: str,
        aie: np.ndarray,
        mean: np.ndarray,
        meta: dict[str, Any],
        summary: dict[str, Any],
        prompt_effects: PromptEffectsIn | None = None,
    ) -> str:
        """Writes <relation>/aie.safetensors, mean_activations.safetensors, aie.csv, aie.json (and
        prompt_effects.safetensors); returns the reference an extract job reads it by (this folder)."""
        from .base import write_json
        from .prompts import write_effects
        from .science import write_csv

        folder = self.folder / path_part(relation)
        if prompt_effects is not None:
            write_effects(folder, *prompt_effects)
        save_arrays(folder / "mean_activations.safetensors", {"mean": mean}, meta)
        save_arrays(folder / "aie.safetensors", {"aie": aie}, meta)
        write_csv(
            folder / "aie.csv",
            ["layer", *[f"head{h}" for h in range(aie.shape[1])]],
            [[layer, *map(float, row)] for layer, row in enumerate(aie)],
        )
        write_json(folder / "aie.json", {**meta, **summary})
        return str(self.folder)

    def prompt_group(
        self,
        relation: str,
        condition: str,
        ts: TaskSet,
        template: PromptTemplate,
        answers: Sequence[Answer],
        detail: dict[str, Any] | None = None,
    ) -> None:
        """What the job measured on a task set under one condition, as prompts/<key>.json (a run
        taken into a store later brings it along)."""
        from .prompts import write_group

        write_group(self.folder, relation, condition, ts, template, answers, detail)

    def vector(self, fv: FunctionVector, path: str | Path, source: Source | None = None) -> str:
        """Saves the vector at `path`; returns the path (the reference later jobs read it by)."""
        return str(fv.save(path))

    def evaluations(self, rows: Sequence[dict[str, Any]], provenance: dict[str, Any], split: str = "") -> None:
        """Nothing beyond the job's own table files."""

    def result_file(self, name: str, data: Any) -> Path:
        """A job's whole result as a JSON file (a store run records it in its run row instead)."""
        from .base import write_json

        return write_json(self.folder / name, data)


AVERAGING_KEYS = ("matched_only", "n_matched", "n_corrupted")


@dataclass
class StoreSink:
    """Results as rows and artifacts of `store`, recorded for run `run_id`; `folder` is the run's folder
    (a workspace for tables and resume checkpoints)."""

    store: Store
    run_id: int | None
    folder: Path

    def finished_aie(self, relation: str, key: dict[str, Any]) -> dict | None:
        """The summary of a relation this run has in the store with the same key, else None."""
        from mfv_desktop.store.results import find_aie_result, read_aie_result

        found = find_aie_result(self.store, self.run_id, relation) if self.run_id is not None else None
        if found is None:
            return None
        res = read_aie_result(self.store, found)
        have = {**res.provenance, **res.meta}
        if not all(have.get(k) == v for k, v in json.loads(json.dumps(key, default=str)).items()):
            return None
        aie = res.aie
        return {
            "n_prompts": have["n_prompts"],
            "base_prob": have.get("base_prob"),
            "max": float(aie.max()),
            "argmax": [int(i) for i in np.unravel_index(aie.argmax(), aie.shape)],
            "clean_accuracy": have["clean_accuracy"],
            **{k: have[k] for k in AVERAGING_KEYS if k in have},
        }

    def aie_result(
        self,
        relation: str,
        aie: np.ndarray,
        mean: np.ndarray,
        meta: dict[str, Any],
        summary: dict[str, Any],
        prompt_effects: PromptEffectsIn | None = None,
    ) -> str:
        from mfv_desktop.store.prompts import add_prompt_effects
        from mfv_desktop.store.results import add_aie_result

        meta = json.loads(json.dumps(meta, default=str))
        aie_id = add_aie_result(
            self.store, self.run_id, np.asarray(aie, np.float32), np.asarray(mean, np.float32), meta
        )
        if prompt_effects is not None:
            digest, idx, effects = prompt_effects
            add_prompt_effects(self.store, aie_id, digest, idx.tolist(), effects)
        return aie_ref(aie_id)

    def prompt_group(
        self,
        relation: str,
        condition: str,
        ts: TaskSet,
        template: PromptTemplate,
        answers: Sequence[Answer],
        detail: dict[str, Any] | None = None,
    ) -> None:
        """What the job measured on a task set under one condition, as a prompt group of this run
        (the task set alone when there is no run)."""
        from mfv_desktop.store.prompts import add_prompt_group, add_task_set

        if self.run_id is None:
            add_task_set(self.store, ts)
            return
        detail = json.loads(json.dumps(detail or {}, default=str))
        add_prompt_group(self.store, self.run_id, relation, condition, ts, template, answers, detail)

    def vector(self, fv: FunctionVector, path: str | Path, source: Source | None = None) -> str:
        """Adds the vector (a composite's parts read from files are added first); returns `vector:ID`."""
        from mfv_desktop.store.results import add_vector

        parts = {sha: v.data for sha, v in (source.loaded if source else {}).items() if v.store_id is None}
        return vector_ref(
            add_vector(
                self.store,
                self.run_id,
                fv.to_bytes(),
                meta=json.loads(json.dumps(fv.meta())),
                parts=parts,
                where=f"vector '{fv.label}'",
            )
        )

    def evaluations(self, rows: Sequence[dict[str, Any]], provenance: dict[str, Any], split: str = "") -> None:
        from mfv_desktop.store.results import add_evaluations

        add_evaluations(self.store, self.run_id, rows, json.loads(json.dumps(provenance, default=str)), split)

    def result_file(self, name: str, data: Any) -> None:
        """Nothing: the run row records the job's result."""


Sink = FolderSink | StoreSink


@dataclass
class JobIO:
    """A job's source and sink."""

    source: Source
    sink: Sink

    def vector_id(self, loaded: LoadedVector) -> int | None:
        """The store id of a vector read by this job (by reference, or found by its content), or None."""
        if loaded.store_id is not None:
            return loaded.store_id
        if self.source.store is None:
            return None
        from mfv_desktop.store.results import vector_id_of

        return vector_id_of(self.source.store, loaded.sha256)


def folder_io(spec: Any) -> JobIO:
    """Files in, files out: the headless job (its `out` folder, or the working folder)."""
    return JobIO(Source(None), FolderSink(Path(getattr(spec, "out", "") or ".")))


def store_io(store: Store, run_id: int | None, folder: Path) -> JobIO:
    return JobIO(Source(store), StoreSink(store, run_id, folder))
