"""The synthetic scene generator: layout rules, determinism, splits, files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfv_desktop.scenes import (
    BASE_RELATIONS,
    DIAGONAL_RELATIONS,
    ELONGATED,
    INVERSE,
    KINDS,
    SCENES_FILE,
    CutoutStamp,
    GeneratorSpec,
    Scene,
    SceneError,
    generate_scenes,
    load_scene_set,
    paper_splits,
    relation_of,
    render_scene,
    resolve_stamps,
    save_scene_set,
    split_kinds,
)

#: the paper's settings scaled to a 256 px canvas (fast)
SMALL = dict(canvas=256, min_size=40, max_size=72, size_jitter=3.0, anchor_jitter=64, distractor_gap=96.0)


def generate(tmp: Path, **kw) -> list[Scene]:
    spec = GeneratorSpec(**{"n_scenes": 6, "seed": 0, **SMALL, **kw})
    return list(generate_scenes(spec, tmp))


def check_scene(scene: Scene, spec: GeneratorSpec, folder: Path) -> None:
    """Every rule of the generator, checked on one scene."""
    c = spec.canvas
    assert scene.width == scene.height == c and scene.split == spec.split
    assert (folder / scene.image).is_file()
    with Image.open(folder / scene.image) as im:
        assert im.size == (c, c)
    names = [o.name for o in scene.objects]
    pool = {st.id: st.name for st in resolve_stamps(spec.kinds)}
    assert len(set(names)) == 6 and all(pool[o.stamp] == o.name for o in scene.objects)
    anchor = scene.object(scene.anchor)
    distractor = scene.object(scene.meta["distractor"])
    assert scene.meta["generator"] == spec.to_json()
    for o in scene.objects:
        assert o.box.inside(c, c), o
        assert spec.min_size <= max(o.box.width, o.box.height) <= spec.max_size, o
        assert o.stamp is not None
    ax, ay = anchor.box.center
    assert abs(ax - c / 2) <= spec.anchor_jitter and abs(ay - c / 2) <= spec.anchor_jitter
    boxes = [o.box for o in scene.objects]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a.overlap_fraction(b) <= spec.max_overlap + 1e-9
    # the designed triples: four neighbours and their inverses; the distractor in none
    designed = [t for t in scene.relations if t.object == anchor.name]
    assert sorted(t.relation for t in designed) == sorted(spec.relations)
    assert len(scene.relations) == 8
    for t in designed:
        n = scene.object(t.subject)
        assert n.box.gap(anchor.box) == pytest.approx(0, abs=1.0)
        assert n.box.intersection(anchor.box) == 0
        assert relation_of(n.box, anchor.box) == t.relation
        assert scene.target(anchor.name, t.relation) == n.name
        assert scene.target(n.name, INVERSE[t.relation]) == anchor.name
    assert all(distractor.name not in (t.subject, t.object) for t in scene.relations)
    for o in scene.objects:
        if o is distractor:
            continue
        if spec.distractor_metric == "gap":
            assert distractor.box.gap(o.box) >= spec.distractor_gap
        else:
            assert math.dist(distractor.box.center, o.box.center) >= spec.distractor_gap


def test_small_scenes_keep_every_rule(tmp_path):
    scenes = generate(tmp_path)
    spec = GeneratorSpec(n_scenes=6, seed=0, **SMALL)
    assert [s.id for s in scenes] == [f"train_{i:06d}" for i in range(6)]
    for s in scenes:
        check_scene(s, spec, tmp_path)
        assert sorted(t.relation for t in s.relations if t.object == s.anchor) == sorted(BASE_RELATIONS)


def test_paper_defaults(tmp_path):
    spec = GeneratorSpec(n_scenes=3, seed=7)
    paper = (spec.canvas, spec.min_size, spec.max_size, spec.anchor_jitter, spec.distractor_gap)
    assert paper == (800, 130, 230, 200, 300)
    for s in generate_scenes(spec, tmp_path):
        check_scene(s, spec, tmp_path)


def test_neighbours_touch_exactly(tmp_path):
    """Above/below neighbours are centred on the anchor's x and share its edge, left/right its y."""
    for s in generate(tmp_path):
        a = s.object(s.anchor).box
        for t in s.relations:
            if t.object != s.anchor:
                continue
            b = s.object(t.subject).box
            if t.relation in ("above", "below"):
                assert (b.y1 == a.y0) if t.relation == "above" else (b.y0 == a.y1)
                assert abs(b.center[0] - a.center[0]) <= 0.5
            else:
                assert (b.x1 == a.x0) if t.relation == "left" else (b.x0 == a.x1)
                assert abs(b.center[1] - a.center[1]) <= 0.5


def test_boxes_are_the_drawn_pixels(tmp_path):
    """Each object's box holds its drawn pixels: redrawing it from stamps and boxes is exact."""
    scenes = generate(tmp_path, n_scenes=3)
    for s in scenes:
        with Image.open(tmp_path / s.image) as im:
            assert render_scene(s).tobytes() == im.convert("RGB").tobytes()
        # the image is white outside the boxes
        arr = np.asarray(Image.open(tmp_path / s.image).convert("RGB"))
        mask = np.ones(arr.shape[:2], dtype=bool)
        for o in s.objects:
            mask[int(o.box.y0) : int(o.box.y1), int(o.box.x0) : int(o.box.x1)] = False
        assert (arr[mask] == 255).all()


def test_gap_metric(tmp_path):
    spec = GeneratorSpec(n_scenes=3, seed=2, distractor_metric="gap", **{**SMALL, "distractor_gap": 40.0})
    for s in generate_scenes(spec, tmp_path):
        check_scene(s, spec, tmp_path)


def test_diagonal_scenes(tmp_path):
    spec = GeneratorSpec(n_scenes=5, seed=1, diagonal=True, **SMALL)
    for s in generate_scenes(spec, tmp_path):
        check_scene(s, spec, tmp_path)
        assert s.relation_names() == set(DIAGONAL_RELATIONS) and s.meta["layout"] == "diagonal"
        a = s.object(s.anchor).box
        for t in s.relations:
            if t.object == s.anchor:  # touching corner to corner
                b = s.object(t.subject).box
                corner_a = (a.x0 if "left" in t.relation else a.x1, a.y0 if "above" in t.relation else a.y1)
                corner_b = (b.x1 if "left" in t.relation else b.x0, b.y1 if "above" in t.relation else b.y0)
                assert corner_a == corner_b


def test_elongated_objects_lie_flat_above_and_below(tmp_path):
    kinds = ("key", "pen", "spoon", "bottle", "apple", "ball", "cup")
    assert set(kinds[:4]) <= ELONGATED
    spec = GeneratorSpec(n_scenes=8, seed=3, kinds=kinds, **SMALL)
    seen = set()
    for s in generate_scenes(spec, tmp_path):
        for t in s.relations:
            if t.object != s.anchor or t.subject not in ELONGATED:
                continue
            b = s.object(t.subject).box
            flat = t.relation in ("above", "below")
            assert (t.subject in s.meta["rotated"]) == flat
            assert (b.width > b.height) == flat
            seen.add(flat)
    assert seen == {True, False}


def test_determinism_and_chunks(tmp_path):
    a = generate(tmp_path / "a")
    b = generate(tmp_path / "b")
    assert [s.to_json() for s in a] == [s.to_json() for s in b]
    for s in a:
        assert (tmp_path / "a" / s.image).read_bytes() == (tmp_path / "b" / s.image).read_bytes()
    spec = GeneratorSpec(n_scenes=6, seed=0, **SMALL)
    chunk = list(generate_scenes(spec, tmp_path / "c", start=4))
    assert [s.to_json() for s in chunk] == [s.to_json() for s in a[4:]]
    other = generate(tmp_path / "d", seed=1)
    assert [s.to_json()["objects"] for s in other] != [s.to_json()["objects"] for s in a]
    test_split = generate(tmp_path / "e", split="test")
    assert [s.to_json()["objects"] for s in test_split] != [s.to_json()["objects"] for s in a]


def test_progress_and_range(tmp_path):
    seen = []
    spec = GeneratorSpec(n_scenes=4, seed=0, **SMALL)
    list(generate_scenes(spec, tmp_path, progress=lambda done, total: seen.append((done, total)), start=1, stop=3))
    assert seen == [(1, 2), (2, 2)]
    with pytest.raises(SceneError, match="outside"):
        list(generate_scenes(spec, tmp_path, start=3, stop=9))


def test_novel_kinds_split():
    train, novel = split_kinds(KINDS, 8, seed=0)
    assert len(novel) == 8 and len(train) == len(KINDS) - 8
    assert not set(train) & set(novel) and set(train) | set(novel) == set(KINDS)
    assert split_kinds(KINDS, 8, seed=0) == (train, novel)
    assert split_kinds(KINDS, 8, seed=1) != (train, novel)
    with pytest.raises(SceneError):
        split_kinds(KINDS, len(KINDS), seed=0)
    specs = paper_splits(seed=0, scale=0.001)
    assert set(specs) == {"extract", "finetune", "test", "novel", "diagonal"}
    assert specs["novel"].kinds == novel and specs["test"].kinds == train
    assert specs["diagonal"].diagonal and not specs["test"].diagonal
    assert specs["extract"].n_scenes == 4 and specs["test"].n_scenes == 1


def test_round_trip_through_scene_set(tmp_path):
    scenes = generate(tmp_path, n_scenes=4)
    save_scene_set(tmp_path, scenes, meta={"generator": "test"})
    loaded = load_scene_set(tmp_path)
    assert loaded == scenes
    assert [s.to_json() for s in loaded] == [s.to_json() for s in scenes]
    assert render_scene(loaded[0]).tobytes() == Image.open(tmp_path / loaded[0].image).convert("RGB").tobytes()


def test_malformed_scene_line_is_named(tmp_path):
    scenes = generate(tmp_path, n_scenes=3)
    path = save_scene_set(tmp_path, scenes)
    lines = path.read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SceneError, match=rf"{SCENES_FILE}, line 2"):
        load_scene_set(tmp_path)
    bad = json.loads(lines[0])
    del bad["objects"]
    path.write_text(lines[0] + "\n" + lines[2] + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(SceneError, match="line 3: malformed scene record"):
        load_scene_set(tmp_path)


def test_cutout_stamps_in_scenes(tmp_path):
    img = Image.new("RGBA", (50, 40), (0, 0, 0, 0))
    img.paste(Image.new("RGBA", (30, 30), (20, 20, 200, 255)), (10, 5))
    img.save(tmp_path / "brick.png")
    brick = CutoutStamp(tmp_path / "brick.png")
    kinds = ("apple", "ball", "cup", "car", "fish", brick.id)
    spec = GeneratorSpec(n_scenes=2, seed=0, kinds=kinds, **SMALL)
    scenes = list(generate_scenes(spec, tmp_path / "out", stamps={brick.id: brick}))
    for s in scenes:
        check_scene(s, spec, tmp_path / "out")
        assert s.object("brick").stamp == brick.id
        assert render_scene(s).tobytes() == Image.open(tmp_path / "out" / s.image).convert("RGB").tobytes()


def test_distances_scale_with_the_canvas():
    assert (GeneratorSpec().anchor_jitter, GeneratorSpec().distractor_gap) == (200, 300)
    small = GeneratorSpec(canvas=256, min_size=40, max_size=72)
    assert (small.anchor_jitter, small.distractor_gap) == (64, 96)
    assert GeneratorSpec(canvas=256, anchor_jitter=10, distractor_gap=50).distractor_gap == 50


def test_spec_validation_and_json():
    spec = GeneratorSpec(n_scenes=5, seed=3, kinds=list(KINDS[:8]), diagonal=True)
    assert spec.kinds == KINDS[:8]
    assert GeneratorSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    with pytest.raises(SceneError, match="at least 6 kinds"):
        GeneratorSpec(kinds=KINDS[:5])
    with pytest.raises(SceneError, match="min_size"):
        GeneratorSpec(min_size=300, max_size=200)
    with pytest.raises(SceneError, match="distractor_metric"):
        GeneratorSpec(distractor_metric="edges")
    with pytest.raises(SceneError, match="unknown fields"):
        GeneratorSpec.from_json({"n_scene": 3})


def test_impossible_layout_explains_the_fix(tmp_path):
    spec = GeneratorSpec(n_scenes=1, canvas=100, min_size=40, max_size=50, max_tries=5)
    with pytest.raises(SceneError, match=r"scene 0: no layout found in 5 tries.*enlarge the canvas"):
        list(generate_scenes(spec, tmp_path))


def test_names_must_be_one_token(tmp_path):
    spec = GeneratorSpec(n_scenes=1, seed=0, **SMALL)
    with pytest.raises(SceneError, match=r"one token for tiny-lm.*'flower'"):
        next(generate_scenes(spec, tmp_path, count_tokens=lambda n: 1 if len(n) < 6 else 2, model_name="tiny-lm"))
    assert not list((tmp_path / "images").glob("*.png"))
