"""Every job spec, in one torch-free module: the one source of truth for the GUI, the CLI and stored runs.

A spec is a frozen dataclass of plain fields. Each field's metadata (see `opt`) says how the CLI
shows it: its help, and where the flag differs from `--field-name`, its spelling, whether it is
positional or required, its choices, the paired flag of a boolean. `cli.py` builds every job
command by walking these fields, so a default lives here only. `spec_to_json` and `spec_from_json`
are the typed codec (cattrs) for run records; `spec_from_json` also reads the records of older
versions (flat model/device/dtype keys, a task set's fields flat beside the job's).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cattrs

from mfv_desktop.codec import converter, to_dict
from mfv_desktop.errors import SpecError
from mfv_desktop.scenes.model import BASE_RELATIONS, DIAGONAL_RELATIONS
from mfv_desktop.tasks.model import Corruption, TaskSpec

#: the smallest value a field of this name may take, in every spec that has one (each number of
#: a tuple; None, where a field allows it, means "the default")
MINIMUM: dict[str, int] = {
    "batch_size": 1,
    "train_batch_size": 1,
    "n_prompts": 1,
    "n_aie": 1,
    "n_finetune": 2,
    "n_extract": 1,
    "n_test": 1,
    "n_scenes": 1,
    "max_per_relation": 1,
    "max_prompts": 1,
    "epochs": 1,
    "top_k": 1,
    "top": 1,
    "k": 0,
    "ks": 0,
    "layer": 0,
    "layers": 0,
    "heads": 0,
    "seed": 0,
    "canvas": 1,
    "n_novel": 0,
}
#: fields that must be above zero
POSITIVE = ("lr", "temperature", "val_fraction", "minutes")
#: the values a field of this name may take
CHOICES: dict[str, tuple[str, ...]] = {
    "corruption": ("paper", "todd"),
    "method": ("fast", "reference"),
    "bias": ("per_head", "none"),
    "init": ("extracted", "random"),
    "weighting": ("probability", "softmax", "equal"),
    "task_kind": ("clean", "corrupted", "zeroshot"),
    "kind": ("clean", "corrupted", "zeroshot"),
}
#: fields that may not be empty
REQUIRED = ("relations",)

OUT_HELP = "output folder (with --store: the run's own folder)"


def opt(default: Any, help: str = "", **cli: Any) -> Any:
    """A spec field with its CLI metadata. `cli` keys: flags (the option strings, default
    `--field-name`), positional (True; "?": may be left out), required (True), choices (else
    CHOICES[name]), nargs ("+", "*": space-separated values instead of one comma-separated), off
    (the flag that sets a boolean whose default is True to False; off_help its help), on (a flag
    that sets it back, paired with `off`)."""
    return field(default=default, metadata={"help": help, **cli})


def flags(f: dataclasses.Field[Any]) -> tuple[str, ...]:
    """The option strings of a field (positional: its name)."""
    return tuple(f.metadata.get("flags", (f"--{f.name.replace('_', '-')}",)))


@dataclass(frozen=True)
class ModelRef:
    """The model a job runs on: a reference `load_backend` understands, the device and the precision."""

    model: str = opt(
        "bundled",
        "'bundled' (the small OpenFlamingo trained by this project), a tiny random model "
        "for tests or a model folder of any family this app knows",
    )
    device: str = opt("cpu", "cpu, cuda, cuda:N, mps or auto")
    dtype: str = opt("fp32", choices=("fp32", "bf16", "fp16", "auto"))


def _numbers(value: Any) -> Iterator[Any]:
    if isinstance(value, (tuple, list)):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def _check(kind: str, obj: Any) -> None:
    for f in dataclasses.fields(obj):
        name, value = f.name, getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check(kind, value)
            continue
        where = f"{kind}: {name} ({flags(f)[0]})"
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


@dataclass(frozen=True)
class JobSpec:
    """Base of every job spec: plain, JSON-serialisable fields only."""

    kind: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        return spec_to_json(self)

    def validate(self) -> None:
        """Refuse values no run can use, before a run exists: SpecError names the field and the fix.
        Numbers are finite and in range (MINIMUM, POSITIVE), names are known (CHOICES), lists that
        say what to do are not empty (REQUIRED); fields of a nested ModelRef or TaskSpec too. Checks
        that need the model's geometry (a layer below its number of layers) happen when the job has
        loaded its model, before any work."""
        _check(self.kind, self)


@dataclass(frozen=True)
class ModelJobSpec(JobSpec):
    model: ModelRef = opt(ModelRef(), "the model, its device and precision")  # noqa: RUF009 (frozen)
    batch_size: int = opt(16, "prompts per forward pass")

    def __post_init__(self) -> None:
        if isinstance(self.model, str):  # a bare reference: on the default device and precision
            object.__setattr__(self, "model", ModelRef(self.model))


# -- data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenerateSpec(JobSpec):
    kind = "generate"
    out: str = opt("", "scene folder (not with --store)", positional="?")
    n_scenes: int = opt(100, "scenes to generate", flags=("--n",))
    seed: int = opt(0)
    split: str = opt("train")
    diagonal: bool = opt(False, "neighbours at the anchor's corners")
    canvas: int = opt(800)
    min_size: int | None = opt(
        None, "object size (long side, px); default: 130 px scaled to the canvas (the paper's 800 px)"
    )
    max_size: int | None = opt(None, "default: 230 px scaled to the canvas")
    kinds: tuple[str, ...] = opt((), "object kinds to draw from (default: the training kinds)")
    novel: bool = opt(False, "draw from the held-out object kinds")
    n_novel: int = opt(4, "how many kinds are held out for the novel-objects split")


@dataclass(frozen=True)
class TasksSpec(JobSpec):
    """A task set built from scenes: `task` is the task set's own spec (tasks/model.py)."""

    kind = "tasks"
    scenes: str = opt("", "scene folder", positional=True)
    out: str = opt("", "task set file", positional=True)
    task: TaskSpec = opt(TaskSpec(BASE_RELATIONS), "what the tasks are")  # noqa: RUF009 (frozen)


# -- causal mediation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class MediationSpec(ModelJobSpec):
    """What the AIE job and its preview share: which prompts, clean and corrupted."""

    scenes: str = opt("", "scene folder (with --store: or dataset:NAME)", required=True)
    out: str = opt("", OUT_HELP)
    relations: tuple[str, ...] = opt(BASE_RELATIONS)
    k: int = opt(4, "demonstrations per prompt")
    n_prompts: int = opt(
        100, "corrupted prompts per relation (the clean ones for mean activations are the same number)"
    )
    split: str | None = opt(None)
    corruption: Corruption = opt("paper")  # noqa: RUF009 (a Literal of strings: immutable)
    seed: int = opt(0)
    only_correct: bool = opt(
        True, "average over all clean prompts, not only the correctly answered ones", off="--all-prompts"
    )
    matched_only: bool = opt(
        True,
        "average the indirect effect over the corrupted prompts whose clean prompt "
        "the model answers correctly (the authors'; the default; all of them when it "
        "answers none)",
        on="--matched-only",
        off="--all-corrupted",
        off_help="average the indirect effect over every corrupted prompt",
    )


@dataclass(frozen=True)
class AIESpec(MediationSpec):
    kind = "aie"
    method: str = opt(
        "fast",
        "fast: the last position recomputed alone for many heads at once; reference: one "
        "full forward pass per head (slow; the same numbers)",
    )


@dataclass(frozen=True)
class PreviewSpec(MediationSpec):
    """Attribution patching: a linear estimate of every head's AIE, from one forward and one backward
    pass per batch of prompts. Minutes of exact AIE become seconds; heads it ranks high are the ones
    to check with the exact job."""

    kind = "preview"
    compare: str = opt("", "an `mfv aie` output folder: print the rank correlation with it")


# -- function vectors ----------------------------------------------------------------------------
@dataclass(frozen=True)
class ExtractSpec(ModelJobSpec):
    kind = "extract"
    aie: str = opt("", "an `mfv aie` output folder", required=True)
    relation: str = opt("above", required=True)
    out: str = opt("", "vector file (.safetensors; with --store: in the run's folder)")
    top_k: int = opt(10)
    heads: tuple[tuple[int, int], ...] = opt((), "explicit heads instead of the top-k, e.g. 12:3,14:0")
    bias: str = opt("per_head")
    layer: int | None = opt(
        None, "injection layer recorded with the vector (default: the reference default scaled to the model)"
    )
    strength: float = opt(1.0)
    label: str = opt("")


@dataclass(frozen=True)
class SweepSpec(ModelJobSpec):
    kind = "sweep"
    vector: str = opt("", required=True)
    scenes: str = opt("", required=True)
    out: str = opt("", OUT_HELP)
    split: str | None = opt(None)
    n_prompts: int = opt(100)
    layers: tuple[int, ...] | None = opt(None, "layers to try (default: every layer)")
    strengths: tuple[float, ...] = opt((1.0,), "e.g. 1,2,4,8")
    seed: int = opt(0)
    method: str = opt(
        "fast", "fast: the last position recomputed alone for every layer and strength; reference: full forward passes"
    )
    ks: tuple[int, ...] = opt((), "K-shot ICL baselines on the same query scenes, e.g. 4 (default: none)")


# -- evaluation ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvaluateSpec(ModelJobSpec):
    kind = "evaluate"
    scenes: str = opt("", required=True)
    out: str = opt("", OUT_HELP)
    relations: tuple[str, ...] = opt(BASE_RELATIONS)
    split: str | None = opt(None)
    ks: tuple[int, ...] = opt((0, 1, 4), "K-shot ICL conditions (0 = zero-shot)")
    vectors: tuple[str, ...] = opt(
        (), "function vector files; each is applied to zero-shot prompts of its relation", nargs="*"
    )
    layer: int | None = opt(None, "injection layer (default: each vector's own)")
    strength: float | None = opt(None)
    n_prompts: int = opt(100)
    seed: int = opt(0)


# -- the whole chain -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainSpec(ModelJobSpec):
    kind = "chain"
    out: str = opt("runs/demo", "output folder (with --store: the run's own folder)")
    relations: tuple[str, ...] = opt(BASE_RELATIONS)
    n_extract: int = opt(64, "scenes to find heads and extract vectors on")
    n_test: int = opt(32, "held-out scenes to test on")
    k: int = opt(4)
    n_prompts: int = opt(16, "prompts per relation for AIE, sweep and evaluation")
    top_k: int = opt(10)
    strengths: tuple[float, ...] = opt((1.0, 2.0, 4.0), "strengths the layer sweep tries")
    canvas: int = opt(800)
    seed: int = opt(0)


# -- vectors beyond extraction -------------------------------------------------------------------
@dataclass(frozen=True)
class FinetuneSpec(ModelJobSpec):
    kind = "finetune"
    vector: str = opt("", "the extracted vector to start from (its relation and layer)")
    scenes: str = opt("", required=True)
    out: str = opt("", OUT_HELP)
    init: str = opt(
        "extracted", "extracted: start from the vector times its strength; random: a random direction of that norm"
    )
    relation: str = opt("", "default: the vector's")
    layer: int | None = opt(None, "injection layer (default: the vector's)")
    split: str | None = opt(None, "training scenes")
    val_split: str | None = opt(None, "validation scenes (default: hold out --val-fraction of --split's)")
    val_fraction: float = opt(0.2)
    n_prompts: int = opt(1000, "training + validation prompts, at most")
    preset: str = opt(
        "paper",
        "paper: Adam lr 1e-3, 20 epochs, cosine, batch 16; authors: lr 1e-2, 10 epochs, "
        "batch 1 (--lr, --epochs and --train-batch-size override it)",
        choices=("paper", "authors"),
    )
    lr: float | None = opt(None)
    epochs: int | None = opt(None)
    train_batch_size: int | None = opt(None)
    seed: int = opt(0)
    label: str = opt("")

    def validate(self) -> None:
        super().validate()
        if self.val_fraction >= 1:
            raise SpecError(
                f"finetune: val_fraction (--val-fraction) is {self.val_fraction}; hold out less than "
                "all of the prompts, e.g. 0.2"
            )


WEIGHTING_HELP = "probability (the paper: w = p / sum p), softmax (with --temperature) or equal"


@dataclass(frozen=True)
class ComposeSpec(ModelJobSpec):
    kind = "compose"
    vectors: tuple[str, ...] = opt((), "the base vectors", nargs="+", required=True)
    out: str = opt("", OUT_HELP)
    source_image: str = opt("", "source image (it shows the relation from A to B)", flags=("--source",))
    source_anchor: str = opt("", "the source's anchor object A", flags=("--a",))
    source_answer: str = opt("", "the source's answer B", flags=("--b",))
    weights: tuple[float, ...] = opt((), "fixed weights, one per vector")
    weighting: str = opt("probability", WEIGHTING_HELP)
    temperature: float = opt(1.0)
    layer: int | None = opt(None, "injection layer (default: the vectors')")
    relation: str = opt("composite")
    label: str = opt("")


@dataclass(frozen=True)
class ApplySpec(ModelJobSpec):
    """One image and anchor: the model's first-token answer with and without function vectors."""

    kind = "apply"
    image: str = opt("", required=True)
    anchor: str = opt("", "the anchor object the question asks about", required=True)
    vectors: tuple[str, ...] = opt((), nargs="+", required=True)
    layer: int | None = opt(None, "injection layer (default: the vectors', their mean if they differ)")
    strength: float | None = opt(None, "one strength for every vector (default: each vector's own)")
    top: int = opt(5, "predictions shown per condition")
    out: str = opt("", OUT_HELP)
    expected: str | None = opt(
        None, "the true answer, when known (e.g. from the scene's labels): each answer is marked right or wrong"
    )


@dataclass(frozen=True)
class AnalogySpec(ModelJobSpec):
    kind = "analogy"
    vectors: tuple[str, ...] = opt((), "the base vectors", nargs="+", required=True)
    out: str = opt("", OUT_HELP)
    source_image: str = opt("", "source image (it shows the relation from A to B)", flags=("--source",))
    source_anchor: str = opt("", "the source's anchor object A", flags=("--a",))
    source_answer: str = opt("", "the source's answer B", flags=("--b",))
    target_image: str = opt("", "target image", flags=("--target",))
    target_anchor: str = opt("", "the target's anchor object C", flags=("--c",))
    target_answer: str = opt("", "the true answer D, if known (to score the answer)", flags=("--d",))
    scenes: str = opt("", "a scene set: one analogy per scene of --split")
    split: str | None = opt(None)
    relations: tuple[str, ...] = opt(DIAGONAL_RELATIONS)
    n_prompts: int = opt(100)
    ks: tuple[int, ...] = opt((1, 4), "K-shot ICL baselines")
    weighting: str = opt("probability", WEIGHTING_HELP)
    temperature: float = opt(1.0)
    layer: int | None = opt(None)
    seed: int = opt(0)


@dataclass(frozen=True)
class ReportSpec(ModelJobSpec):
    kind = "report"
    out: str = opt("", OUT_HELP)
    scenes: str = opt("", "scene set with the splits below (default: generate them)")
    extract_split: str = opt("extract")
    test_split: str = opt("test")
    novel_split: str = opt("novel")
    diagonal_split: str = opt("diagonal")
    n_prompts: int = opt(200, "prompts per relation for every accuracy")
    n_aie: int = opt(200, "prompts per relation for AIE")
    matched_only: bool = opt(
        True,
        "AIE over the corrupted prompts whose clean prompt the model answers correctly (the authors'; the default)",
        on="--matched-only",
        off="--all-corrupted",
        off_help="AIE over every corrupted prompt",
    )
    k: int = opt(4)
    ks: tuple[int, ...] = opt((1, 4, 8), "K-shot ICL conditions")
    top_k: int = opt(10)
    strengths: tuple[float, ...] = opt((1.0, 2.0, 4.0))
    preset: str = opt("paper", "fine-tuning preset", choices=("paper", "authors"))
    n_finetune: int = opt(256, "fine-tuning prompts per relation (train + validation)")
    epochs: int | None = opt(None, "fine-tuning epochs (default: the preset's)")
    seed: int = opt(1000)
    batch_size: int = opt(32, "prompts per forward pass")


#: every job spec of the product, by kind
SPECS: dict[str, type[JobSpec]] = {
    cls.kind: cls
    for cls in (
        GenerateSpec,
        TasksSpec,
        AIESpec,
        PreviewSpec,
        ExtractSpec,
        SweepSpec,
        EvaluateSpec,
        ChainSpec,
        FinetuneSpec,
        ComposeSpec,
        AnalogySpec,
        ApplySpec,
        ReportSpec,
    )
}


# -- the codec -----------------------------------------------------------------------------------
def spec_to_json(spec: JobSpec) -> dict[str, Any]:
    """A spec as plain JSON (lists for tuples), with its "kind"."""
    return {"kind": spec.kind, **to_dict(spec)}


def _upgrade(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    """Records of older versions: flat model/device/dtype; a task set's fields beside the tasks job's."""
    hints = typing.get_type_hints(cls)
    d = dict(d)
    if hints.get("model") is ModelRef and (isinstance(d.get("model"), str) or "device" in d or "dtype" in d):
        d["model"] = {k: d.pop(k) for k in ("model", "device", "dtype") if k in d}
    if cls is TasksSpec and "task" not in d:
        names = {f.name for f in dataclasses.fields(TaskSpec)} - {"kind"}
        task = {k: d[k] for k in names if k in d}
        if "task_kind" in d:
            task["kind"] = d["task_kind"]
        d["task"] = {**to_dict(TasksSpec().task), **task}
    return d


def spec_from_json(d: Mapping[str, Any], kinds: Mapping[str, type[JobSpec]] | None = None) -> JobSpec:
    """The spec a record holds (`spec_to_json`'s, or an older version's); unknown keys are ignored.
    SpecError for an unknown kind (`kinds`: kind -> spec class, default SPECS) or a field of the wrong type."""
    kinds = SPECS if kinds is None else kinds
    cls = kinds.get(str(d.get("kind", "")))
    if cls is None:
        raise SpecError(f"unknown job kind {d.get('kind')!r}")
    try:
        return converter.structure(_upgrade(cls, {k: v for k, v in d.items() if k != "kind"}), cls)
    except (cattrs.BaseValidationError, TypeError, ValueError) as e:
        raise SpecError(f"a {cls.kind} spec that does not read: {e}") from e
