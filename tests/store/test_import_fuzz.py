"""Data-set import under fuzzing: hostile metadata and shapes give a named error or a stored, usable
data set; never another exception, never a file outside the data folder."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfv_desktop.progress import run_to_end
from mfv_desktop.scenes.importers import BadImport
from mfv_desktop.store import scenes as repo
from mfv_desktop.store.errors import StoreError
from mfv_desktop.store.exchange import export_dataset, import_dataset_export

HOSTILE_TEXT = [
    "",
    " ",
    "..",
    "../../../x",
    "/abs/dir",
    "a\\b",
    "cup\x00",
    "left\u202eright",
    "\u200f",
    "x" * 5000,
    "line\nbreak",
    "\udc80",
    "con",
    "🙂",
    "above",
]
text = st.sampled_from(HOSTILE_TEXT) | st.text(max_size=12) | st.text(min_size=195, max_size=210)
number = st.integers(min_value=-(10**30), max_value=10**30) | st.floats() | st.sampled_from([10**400, -0.0, True])
leaf = st.none() | st.booleans() | number | text
anything = st.recursive(leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(text, c, max_size=3), max_leaves=12)
box = st.lists(number, min_size=3, max_size=5) | anything

#: where in a scene record a value goes: a function (record, value) -> None
PLACES = {
    "id": lambda r, v: r.__setitem__("id", v),
    "width": lambda r, v: r.__setitem__("width", v),
    "anchor": lambda r, v: r.__setitem__("anchor", v),
    "split": lambda r, v: r.__setitem__("split", v),
    "meta": lambda r, v: r.__setitem__("meta", v),
    "image": lambda r, v: r.__setitem__("image", v),
    "objects": lambda r, v: r.__setitem__("objects", v),
    "object": lambda r, v: r["objects"].__setitem__(0, v),
    "object name": lambda r, v: r["objects"][0].__setitem__("name", v),
    "stamp": lambda r, v: r["objects"][0].__setitem__("stamp", v),
    "box": lambda r, v: r["objects"][0].__setitem__("box", v),
    "relations": lambda r, v: r.__setitem__("relations", v),
    "relation": lambda r, v: r["relations"][0].__setitem__(1, v),
    "labels": lambda r, v: r.__setitem__("labels", v),
    "label relation": lambda r, v: r["labels"][0].__setitem__("relation", v),
    "label status": lambda r, v: r["labels"][0].__setitem__("status", v),
    "label subject": lambda r, v: r["labels"][0].__setitem__("subject", v),
}
#: the same hostile name everywhere a scene names an object or a relation (consistent, so it gets past
#: the cross-checks and reaches the store's own checks)
RENAMES = ("object", "relation")


def _rename(rec: dict, kind: str, new) -> None:
    if kind == "relation":
        old = rec["relations"][0][1]
        rec["relations"] = [[a, new if r == old else r, b] for a, r, b in rec["relations"]]
        rec["labels"] = [{**lb, "relation": new} if lb["relation"] == old else lb for lb in rec["labels"]]
        return
    old = rec["objects"][0]["name"]
    rec["objects"][0]["name"] = new
    rec["relations"] = [[new if n == old else n for n in t] for t in rec["relations"]]
    rec["labels"] = [{**lb, **{k: new for k in ("subject", "object") if lb[k] == old}} for lb in rec["labels"]]
    if rec.get("anchor") == old:
        rec["anchor"] = new


edit = st.tuples(st.just("set"), st.sampled_from(sorted(PLACES)), anything | text | box) | st.tuples(
    st.just("rename"), st.sampled_from(RENAMES), text
)


def _files(root: Path, skip: tuple[Path, ...]) -> set[Path]:
    return {p for p in root.rglob("*") if not any(p.is_relative_to(s) for s in skip)}


def test_dataset_import_fuzz_gives_a_named_error_or_a_usable_data_set(store, abs_scenes, tmp_path):
    run_to_end(repo.add_scenes(store, "src", abs_scenes[:2]))
    folder = export_dataset(store, "src", tmp_path / "exp")
    good = json.loads((folder / "dataset.json").read_text())
    outside = _files(tmp_path, (store.data_dir, folder))
    names = (f"fuzz{i}" for i in itertools.count())
    outcomes = {"refused": 0, "stored": 0}

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(st.tuples(st.integers(0, 1), edit), min_size=1, max_size=3))
    def check(edits):
        doc = json.loads(json.dumps(good))
        try:
            for i, (how, where, value) in edits:
                rec = doc["scenes"][i]
                if how == "rename":
                    _rename(rec, where, value)
                else:
                    PLACES[where](rec, value)
        except (IndexError, KeyError, TypeError, AttributeError):
            pass  # an earlier edit changed the shape; the document goes in as it is
        (folder / "dataset.json").write_text(json.dumps(doc))
        name = next(names)
        before = repo.datasets(store)
        try:
            res = run_to_end(import_dataset_export(store, folder, name))
        except (BadImport, StoreError) as e:
            assert "dataset.json" in str(e)
            assert repo.datasets(store) == before  # nothing half-added
            outcomes["refused"] += 1
        else:
            stored = repo.page_scenes(store, dataset=name, limit=10)
            assert len(stored) == res["added"] == 2
            for summary in stored:  # usable: it reads back, its image is in the data folder
                scene, labels = repo.get_scene(store, summary.id)
                assert Path(scene.image).resolve().is_relative_to(store.data_dir) and Path(scene.image).is_file()
                assert all(o.box.inside(scene.width, scene.height) for o in scene.objects)
                repo.write_scene_set(store, name, tmp_path / "sets" / name)
            outcomes["stored"] += 1
        assert _files(tmp_path, (store.data_dir, folder, tmp_path / "sets")) == outside

    check()
    assert outcomes["refused"] and outcomes["stored"]  # both ways were tried
