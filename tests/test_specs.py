"""The job specs are the one source of truth: the CLI has an option for every field with the spec's
default, and every spec survives its JSON record (and reads the records of older versions)."""

from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from mfv_desktop.cli import COMMANDS, _spec_from_args, build_parser
from mfv_desktop.errors import SpecError
from mfv_desktop.specs import SPECS, AIESpec, JobSpec, ModelRef, SweepSpec, TasksSpec, spec_from_json, spec_to_json
from mfv_desktop.tasks import TaskSpec

#: the least each job command needs on its command line (its required arguments, with their defaults'
#: values where the spec has one, so that the parsed spec must equal the default one)
REQUIRED = {
    "tasks": ["s", "o"],
    "aie": ["--scenes", "s"],
    "preview": ["--scenes", "s"],
    "extract": ["--aie", "a", "--relation", "above"],
    "sweep": ["--vector", "v", "--scenes", "s"],
    "evaluate": ["--scenes", "s"],
    "finetune": ["--scenes", "s"],
    "compose": ["--vectors", "v"],
    "apply": ["--image", "i", "--anchor", "a", "--vectors", "v"],
    "analogy": ["--vectors", "v"],
}
#: what REQUIRED sets that the spec's default leaves empty
GIVEN = {
    "tasks": {"scenes": "s", "out": "o"},
    "aie": {"scenes": "s"},
    "preview": {"scenes": "s"},
    "extract": {"aie": "a"},
    "sweep": {"vector": "v", "scenes": "s"},
    "evaluate": {"scenes": "s"},
    "finetune": {"scenes": "s"},
    "compose": {"vectors": ("v",)},
    "apply": {"image": "i", "anchor": "a", "vectors": ("v",)},
    "analogy": {"vectors": ("v",)},
}


def _leaves(cls: type, prefix: str = "") -> list[str]:
    """Every field of a spec as the CLI's dest: a nested dataclass's fields as NAME.FIELD."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        out += _leaves(tp, f"{prefix}{f.name}.") if dataclasses.is_dataclass(tp) else [prefix + f.name]
    return out


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_spec_field_has_its_option_with_the_specs_default(command):
    cls = SPECS[COMMANDS[command][0]]
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    dests = {a.dest for a in sub._actions}
    assert set(_leaves(cls)) <= dests, f"mfv {command} has no option for {set(_leaves(cls)) - dests}"
    args = parser.parse_args([command, *REQUIRED.get(command, [])])
    assert _spec_from_args(args) == dataclasses.replace(cls(), **GIVEN.get(command, {}))


def test_the_sweeps_icl_baselines_default_to_none_on_the_command_line_too():
    """The drift the issue names: `mfv sweep` said (4,), SweepSpec (); the spec's holds."""
    args = build_parser().parse_args(["sweep", "--vector", "v", "--scenes", "s"])
    assert _spec_from_args(args).ks == SweepSpec().ks == ()
    args = build_parser().parse_args(["sweep", "--vector", "v", "--scenes", "s", "--ks", "4,8"])
    assert _spec_from_args(args).ks == (4, 8)


def test_renamed_and_paired_flags_keep_their_spelling():
    p = build_parser()
    spec = _spec_from_args(p.parse_args(["tasks", "s", "o", "--kind", "zeroshot", "--relations", "above,left"]))
    assert spec.task == TaskSpec(relations=("above", "left"), kind="zeroshot")
    spec = _spec_from_args(p.parse_args(["generate", "o", "--n", "7"]))
    assert spec.n_scenes == 7
    spec = _spec_from_args(
        p.parse_args(
            ["analogy", "--vectors", "a", "b", "--source", "i", "--a", "x", "--b", "y", "--target", "t", "--c", "z"]
        )
    )
    assert (
        spec.vectors,
        spec.source_image,
        spec.source_anchor,
        spec.source_answer,
        spec.target_image,
        spec.target_anchor,
    ) == (("a", "b"), "i", "x", "y", "t", "z")
    spec = _spec_from_args(
        p.parse_args(
            [
                "aie",
                "--scenes",
                "s",
                "--all-prompts",
                "--all-corrupted",
                "--model",
                "tiny",
                "--dtype",
                "bf16",
                "--batch-size",
                "2",
            ]
        )
    )
    assert (spec.only_correct, spec.matched_only, spec.model, spec.batch_size) == (
        False,
        False,
        ModelRef("tiny", "cpu", "bf16"),
        2,
    )
    spec = _spec_from_args(p.parse_args(["extract", "--aie", "a", "--relation", "left", "--heads", "12:3,14:0"]))
    assert spec.heads == ((12, 3), (14, 0))
    assert _spec_from_args(p.parse_args(["report", "--all-corrupted"])).matched_only is False
    with pytest.raises(SystemExit):
        p.parse_args(["report", "--all-corrupted", "--matched-only"])


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_every_spec_survives_its_json_record(kind):
    cls = SPECS[kind]
    spec = cls()
    record = json.loads(json.dumps(spec_to_json(spec)))  # as stored: tuples are lists
    assert record["kind"] == kind and spec_from_json(record) == spec and spec.to_json() == record
    spec.validate()


def test_a_record_of_an_older_version_still_reads():
    """Runs recorded before ModelRef had flat model/device/dtype keys; a tasks run had its task set's
    fields beside its own; lists stand for tuples and unknown keys are ignored."""
    old = {
        "kind": "aie",
        "model": "tiny",
        "device": "cuda",
        "dtype": "bf16",
        "batch_size": 4,
        "scenes": "s",
        "relations": ["above"],
        "k": 2,
        "split": None,
        "gone": 1,
    }
    assert spec_from_json(old) == AIESpec(
        scenes="s", relations=("above",), k=2, batch_size=4, model=ModelRef("tiny", "cuda", "bf16")
    )
    old = {
        "kind": "tasks",
        "scenes": "s",
        "out": "o",
        "relations": ["left"],
        "k": 1,
        "task_kind": "corrupted",
        "corruption": "todd",
        "seed": 3,
        "split": "a",
        "max_per_relation": 5,
    }
    assert spec_from_json(old) == TasksSpec("s", "o", TaskSpec(("left",), 1, "corrupted", "todd", 3, "a", 5))
    assert spec_from_json({"kind": "extract", "heads": [[12, 3]]}).heads == ((12, 3),)


def test_a_record_that_does_not_read_is_refused():
    with pytest.raises(SpecError, match="unknown job kind"):
        spec_from_json({"kind": "nonsense"})
    with pytest.raises(SpecError):
        spec_from_json({"kind": "aie", "k": "four"})


def test_a_stored_run_of_an_unknown_kind_is_a_store_error():
    from mfv_desktop.jobs.stored import spec_from_json as stored
    from mfv_desktop.store import StoreError

    with pytest.raises(StoreError, match="unknown job kind 'nonsense'"):
        stored({"kind": "nonsense"})


def test_a_model_job_takes_a_bare_model_reference_and_validates_nested_fields():
    assert AIESpec(model="tiny").model == ModelRef("tiny")
    with pytest.raises(SpecError, match="--max-per-relation"):
        TasksSpec(task=TaskSpec(("above",), max_per_relation=0)).validate()
    with pytest.raises(SpecError, match=r"--kind"):
        TasksSpec(task=TaskSpec(("above",), kind="nonsense")).validate()  # type: ignore[arg-type]


def test_every_spec_is_a_job_spec_of_its_kind():
    assert all(issubclass(cls, JobSpec) and cls.kind == kind for kind, cls in SPECS.items())
