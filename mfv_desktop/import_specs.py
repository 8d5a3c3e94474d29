"""The specs of imports into the store, torch-free and Qt-free like specs.py: the fields of
`mfv import gqa` (its options are generated from them, as the job commands' are) and of the app's
File > Import > GQA scene graphs… dialog. A default is written once: here, from the importer's
own `GQAOptions`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mfv_desktop.errors import SpecError
from mfv_desktop.scenes import SceneError
from mfv_desktop.scenes.importers.gqa import ANCHOR_RULES, GQA_RELATIONS, GQAOptions
from mfv_desktop.specs import opt

_GQA = GQAOptions()


def gqa_relation_name(predicate: str) -> str:
    """The project's name for a GQA predicate: the paper's (GQA_RELATIONS), else the words joined by "_"."""
    p = " ".join(predicate.lower().split())
    return GQA_RELATIONS.get(p, p.replace(" ", "_"))


@dataclass(frozen=True)
class GQAImportSpec:
    """GQA scene graphs with their images, filtered as the paper's authors filter them by default."""

    scene_graphs: str = opt("", "the scene-graph JSON (e.g. train_sceneGraphs.json)", positional=True)
    images: str = opt("", "the folder of GQA images (<image_id>.jpg)", required=True)
    dataset: str = opt("gqa", "the data set the scenes go into")
    min_area: float = opt(
        _GQA.min_area_ratio, f"smallest object box, as a fraction of the image area (default {_GQA.min_area_ratio:g})"
    )
    max_area: float = opt(
        _GQA.max_area_ratio, f"largest object box, as a fraction of the image area (default {_GQA.max_area_ratio:g})"
    )
    relations: tuple[str, ...] = opt(
        tuple(GQA_RELATIONS),
        "the GQA relations kept, comma-separated; others are dropped (default: the paper's "
        + ",".join(GQA_RELATIONS)
        + ")",
    )
    anchor: str = opt(
        _GQA.anchor_rule,
        "which object is a scene's anchor, among those with a relation to exactly one object "
        f"(default {_GQA.anchor_rule}): " + "; ".join(f"{k}: {v}" for k, v in ANCHOR_RULES.items()),
        choices=tuple(ANCHOR_RULES),
    )
    min_objects: int = opt(
        _GQA.min_objects, f"fewest objects left after the size and name filters (default {_GQA.min_objects})"
    )
    max_objects: int = opt(
        _GQA.max_objects, f"most objects left after the size and name filters (default {_GQA.max_objects})"
    )
    min_relations: int = opt(_GQA.min_relations, f"fewest kept relations (default {_GQA.min_relations})")
    max_relations: int = opt(_GQA.max_relations, f"most kept relations (default {_GQA.max_relations})")
    max_same_name: int = opt(
        _GQA.max_same_name, f"most objects of one name, repeats become cup_2, ... (default {_GQA.max_same_name})"
    )
    one_object_per_predicate: bool = opt(
        _GQA.one_object_per_predicate,
        "drop a scene where an object has one relation to several objects",
        off="--allow-many-objects-per-relation",
        off_help="keep scenes where an object has one relation to several objects",
    )
    word_names_only: bool = opt(_GQA.word_names_only, "drop objects whose name is not one prompt word")

    def options(self) -> GQAOptions:
        """The importer's options (SpecError naming what is wrong)."""
        try:
            return GQAOptions(
                relations={p: gqa_relation_name(p) for p in self.relations},
                min_area_ratio=self.min_area,
                max_area_ratio=self.max_area,
                min_objects=self.min_objects,
                max_objects=self.max_objects,
                min_relations=self.min_relations,
                max_relations=self.max_relations,
                max_same_name=self.max_same_name,
                one_object_per_predicate=self.one_object_per_predicate,
                word_names_only=self.word_names_only,
                anchor_rule=self.anchor,
            )
        except SceneError as e:
            raise SpecError(f"gqa import: {e}") from e

    def validate(self) -> None:
        if not self.scene_graphs or not self.images:
            raise SpecError("gqa import: give the scene-graph JSON and the images folder")
        if not 0 <= self.min_area <= self.max_area <= 1:
            raise SpecError("gqa import: need 0 <= min_area <= max_area <= 1 (fractions of the image area)")
        self.options()

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
