"""In-context tasks built from scenes: clean K-shot, corrupted and zero-shot prompts.

A task is structure, not text: its demonstrations and its query (image, anchor, answer). A backend
renders it with its prompt template; the OpenFlamingo template is the paper's (method.md §1).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mfv_desktop.codec import to_dict

TaskKind = Literal["clean", "corrupted", "zeroshot"]
Corruption = Literal["paper", "todd"]


class TaskError(ValueError):
    """Tasks that cannot be built from the given scenes; the message says what is missing."""


@dataclass(frozen=True)
class Shot:
    """One image with a question and its answer: a demonstration, or the query (answer = the truth)."""

    scene_id: str
    image: str  # absolute path of the scene's image
    anchor: str
    answer: str
    relation: str  # the relation that links answer to anchor in this image


@dataclass(frozen=True)
class Task:
    relation: str
    kind: TaskKind
    demos: tuple[Shot, ...]
    query: Shot

    @property
    def k(self) -> int:
        return len(self.demos)

    @property
    def answer(self) -> str:
        return self.query.answer

    @property
    def images(self) -> list[str]:
        return [d.image for d in self.demos] + [self.query.image]

    def to_json(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Task:
        return cls(d["relation"], d["kind"], tuple(Shot(**s) for s in d["demos"]), Shot(**d["query"]))


@dataclass(frozen=True)
class PromptTemplate:
    """How a backend writes a task as text; `{anchor}` and `{answer}` are filled in."""

    id: str
    demo: str
    query: str
    image_token: str

    def render(self, task: Task) -> str:
        parts = [self.demo.format(anchor=d.anchor, answer=d.answer) for d in task.demos]
        parts.append(self.query.format(anchor=task.query.anchor))
        return "".join(parts)


#: the paper's OpenFlamingo prompt (method.md §1)
OPENFLAMINGO_TEMPLATE = PromptTemplate(
    id="openflamingo-qa",
    demo="<image>Q:{anchor}. A:{answer}.<|endofchunk|>",
    query="<image>Q:{anchor}. A:",
    image_token="<image>",
)


@dataclass(frozen=True)
class TaskSpec:
    relations: tuple[str, ...]
    k: int = 4
    kind: TaskKind = "clean"
    corruption: Corruption = "paper"
    seed: int = 0
    split: str | None = None
    #: at most this many tasks per relation (None: every scene that can serve)
    max_per_relation: int | None = None

    def __post_init__(self) -> None:
        if not self.relations:
            raise TaskError("a task set needs at least one relation")
        if self.k < 0:
            raise TaskError(f"K must be >= 0, got {self.k}")
        if self.kind == "zeroshot" and self.k != 0:
            object.__setattr__(self, "k", 0)
        if self.kind == "corrupted" and self.k < 1:
            raise TaskError("a corrupted task needs at least one demonstration (K >= 1)")

    def to_json(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TaskSpec:
        return cls(**{**d, "relations": tuple(d["relations"])})


@dataclass
class TaskSet:
    spec: TaskSpec
    tasks: list[Task]
    #: the scene set's content hash the tasks were drawn from
    scenes_hash: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def by_relation(self, relation: str) -> list[Task]:
        return [t for t in self.tasks if t.relation == relation]

    @property
    def hash(self) -> str:
        """Content hash of spec + tasks (image paths excluded, so a moved data folder hashes the same)."""
        body = {
            "spec": self.spec.to_json(),
            "tasks": [
                {**t.to_json(), "demos": [_shot_key(d) for d in t.demos], "query": _shot_key(t.query)}
                for t in self.tasks
            ],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_json(),
            "hash": self.hash,
            "scenes_hash": self.scenes_hash,
            "meta": self.meta,
            "tasks": [t.to_json() for t in self.tasks],
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: str | Path) -> TaskSet:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
            ts = cls(
                TaskSpec.from_json(d["spec"]),
                [Task.from_json(t) for t in d["tasks"]],
                d.get("scenes_hash", ""),
                d.get("meta", {}),
            )
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise TaskError(
                f"{path} is not a task set file ({type(e).__name__}: {e}); build one with `mfv tasks`"
            ) from e
        if d.get("hash") and d["hash"] != ts.hash:
            raise TaskError(f"{path}: content hash mismatch (the file was edited); rebuild it with `mfv tasks`")
        return ts


def _shot_key(s: Shot) -> list[str]:
    return [s.scene_id, s.anchor, s.answer, s.relation]


def tasks_answers(tasks: Sequence[Task]) -> list[str]:
    return [t.answer for t in tasks]
