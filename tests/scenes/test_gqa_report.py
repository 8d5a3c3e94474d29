"""A GQA import says what it kept and why it dropped the rest: scenes per reason (with example ids)
and relations per reason (an object id that does not exist, a box outside the image). The report is
made once, by the importer, and the CLI prints it (the app shows the same lines: tests/ui/test_gqa_import.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from mfv_desktop.scenes.importers import GQAOptions, GQAReport, read_gqa

W, H = 200, 100  # 5% of the image is 1000 px, 50% is 10000 px


def obj(name, x, y, w, h, *rels):
    return {"name": name, "x": x, "y": y, "w": w, "h": h, "relations": [{"name": r, "object": o} for r, o in rels]}


def keeper(i: int) -> dict:
    """A scene the authors' filter keeps: three objects of 8-18% of the image, one relation."""
    return {
        "width": W,
        "height": H,
        "objects": {
            f"{i}1": obj("cup", 10, 10, 40, 40, ("to the left of", f"{i}2")),
            f"{i}2": obj("plate", 120, 10, 40, 40),
            f"{i}3": obj("table", 60, 55, 60, 40),
        },
    }


def tiny(i: int) -> dict:
    """Every object under 5% of the image."""
    return {
        "width": W,
        "height": H,
        "objects": {f"{i}1": obj("crumb", 1, 1, 5, 5, ("above", f"{i}2")), f"{i}2": obj("ant", 50, 50, 3, 3)},
    }


def graphs() -> dict:
    g = {f"k{i}": keeper(i) for i in range(3)}
    g |= {f"t{i}": tiny(10 + i) for i in range(4)}
    broken = keeper(20)  # kept, but two of its relations cannot be: no object 999, a box outside the image
    broken["objects"]["201"]["relations"].append({"name": "above", "object": "999"})
    broken["objects"]["204"] = obj("ghost", 500, 500, 20, 20, ("below", "201"))
    g["broken"] = broken
    g["nofile"] = keeper(30)  # kept by the filter, but its image is not in the folder
    return g


def write(tmp_path: Path, g: dict) -> tuple[Path, Path]:
    images = tmp_path / "images"
    images.mkdir(parents=True, exist_ok=True)
    for image_id in g:
        if image_id != "nofile":
            Image.new("RGB", (W, H), "teal").save(images / f"{image_id}.jpg")
    path = tmp_path / "sceneGraphs.json"
    path.write_text(json.dumps(g))
    return path, images


def test_the_report_counts_kept_and_dropped_scenes_with_their_reasons(tmp_path):
    path, images = write(tmp_path, graphs())
    scenes, report = read_gqa(path, images)
    assert sorted(s.id for s in scenes) == ["broken", "k0", "k1", "k2"]
    assert (report.read, report.kept) == (9, 4)
    assert report.scenes["no_object_in_size"].count == 4
    assert report.scenes["no_object_in_size"].examples == ["t0", "t1", "t2", "t3"]
    assert report.scenes["missing_image"].count == 1
    lines = report.lines()
    assert lines[0] == (
        "kept 4 of 9 scenes: 4 had no object between 5% and 50% of the image; 1 had no image in the images folder"
    )
    # the dropped relations are counted and named: which image, which object, which relation
    assert report.relations["unknown_object"].count == 1
    assert report.relations["unknown_object"].examples == ["image broken: cup above object 999"]
    assert report.relations["box_outside"].count == 1
    assert "image broken: ghost below" in report.relations["box_outside"].examples[0]
    text = report.text()
    assert "named an object id that does not exist" in text and "had an object whose box is outside the image" in text
    assert GQAReport.from_dict(json.loads(json.dumps(report.to_dict()))).lines() == lines  # through a run record


def test_options_change_the_reasons_and_the_anchor(tmp_path):
    path, images = write(tmp_path, graphs())
    _, report = read_gqa(path, images, GQAOptions(min_area_ratio=0.0001, min_objects=3))
    assert "no_object_in_size" not in report.scenes
    assert report.scenes["too_few_objects"].count == 4  # two tiny objects each: fewer than 3
    assert "had fewer than 3 usable objects between 0% and 50% of the image" in report.headline()
    _, report = read_gqa(path, images, GQAOptions(relations={"above": "above"}))
    assert report.scenes["too_few_relations"].count == 5  # "to the left of" is no longer kept
    assert report.relations["other_relation"].examples == ["'to the left of'"]
    with pytest.raises(ValueError, match="anchor_rule"):
        GQAOptions(anchor_rule="tallest")


def test_the_anchor_rules(tmp_path):
    g = {
        "a": {
            "width": W,
            "height": H,
            "objects": {  # two relations are to the cup, the plate is the largest, the lamp is in the middle
                "1": obj("cup", 0, 0, 40, 30, ("to the left of", "3")),
                "2": obj("plate", 140, 0, 60, 60, ("to the right of", "1")),
                "3": obj("lamp", 80, 30, 40, 40, ("to the left of", "2")),
                "4": obj("rug", 0, 60, 40, 40, ("below", "1")),
            },
        }
    }
    path, images = write(tmp_path, g)
    anchor = lambda rule: read_gqa(path, images, GQAOptions(anchor_rule=rule, add_inverses=False))[0][0].anchor  # noqa: E731
    assert anchor("most_relations") == "cup"
    assert anchor("largest") == "plate"
    assert anchor("central") == "lamp"


def test_mfv_import_gqa_prints_what_it_kept_and_why(tmp_path, capsys):
    from mfv_desktop.cli import main

    path, images = write(tmp_path, graphs())
    data = tmp_path / "store"
    args = ["-q", "--store", str(data), "import", "gqa", str(path), "--images", str(images), "--dataset", "g"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "kept 4 of 9 scenes: 4 had no object between 5% and 50% of the image" in out
    assert "1 named an object id that does not exist" in out and "image broken: cup above object 999" in out
    # the importer's filters are options of the command: nothing passes a 60% lower bound, and it says why
    assert main([*args, "--dataset", "none", "--min-area", "0.6", "--max-area", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "kept 0 of 9 scenes: 9 had no object between 60% and 90% of the image" in out
    assert main([*args, "--relations", "above", "--anchor", "largest", "--dataset", "above"]) == 0
    assert "had fewer than 1 of the chosen relations" in capsys.readouterr().out
    assert main([*args, "--min-area", "0.7", "--max-area", "0.2"]) == 2  # a clear refusal, not a traceback
    assert "min_area" in capsys.readouterr().err
