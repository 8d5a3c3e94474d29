"""Importing outside files (images, GQA scene graphs, the authors' metadata.csv): all of it is hostile."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mfv_desktop.scenes import Box, RelationTriple, Scene, SceneError
from mfv_desktop.scenes.importers import (
    GQA_RELATIONS,
    MAX_PIXELS,
    BadImport,
    GQAOptions,
    ImageInfo,
    check_image,
    find_images,
    read_gqa_scene_graphs,
    read_synthetic_metadata,
    safe_child,
    scene_from_image,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _image(path: Path, size=(32, 24), fmt=None, noise=False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)) if noise else Image.new("RGB", size, "teal")
    img.save(path, fmt)
    return path


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels but carries almost no data (never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# -- check_image ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, fmt, size", [("a.png", "PNG", (32, 24)), ("b.jpg", "JPEG", (17, 9))])
def test_check_image_reads_size_format_and_hash(tmp_path, name, fmt, size):
    p = _image(tmp_path / name, size)
    info = check_image(p)
    data = p.read_bytes()
    assert info == ImageInfo(p.resolve(), size[0], size[1], fmt, hashlib.sha256(data).hexdigest(), len(data))
    assert info.path.is_absolute()


def _broken(tmp_path: Path, kind: str) -> Path:
    p = tmp_path / f"{kind}.png"
    if kind == "corrupt":
        p.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300))
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        data = _image(tmp_path / "whole.png", (64, 64), noise=True).read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif kind == "truncated_jpeg":
        data = _image(tmp_path / "whole.jpg", (64, 64), noise=True).read_bytes()
        p = tmp_path / "truncated.jpg"
        p.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        p.write_text("this is not a picture\n")
    elif kind == "folder":
        p.mkdir()
    elif kind == "unsupported":  # a real image in a format the importer does not take
        p = tmp_path / "icon.ico"
        Image.new("RGB", (16, 16)).save(p, "ICO")
    return p  # "missing": never written


@pytest.mark.parametrize(
    "kind", ["corrupt", "empty", "truncated", "truncated_jpeg", "text", "folder", "missing", "unsupported"]
)
def test_check_image_refuses_broken_files_naming_them(tmp_path, kind):
    p = _broken(tmp_path, kind)
    with pytest.raises(BadImport) as e:
        check_image(p)
    assert p.name in str(e.value)


@pytest.mark.parametrize("size", [(8000, 8000), (100_000, 100_000)])
@pytest.mark.parametrize("pillow_limit", ["default", None])
def test_decompression_bombs_are_refused_before_decoding(tmp_path, monkeypatch, size, pillow_limit):
    """Refused on the header's size whatever Pillow's global limit is, and that limit is left alone."""
    if pillow_limit is None:
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    before = Image.MAX_IMAGE_PIXELS
    p = tmp_path / "bomb.png"
    p.write_bytes(_png_header(*size))
    assert len(p.read_bytes()) < 200
    with pytest.raises(BadImport, match="pixel limit") as e:
        check_image(p)
    assert p.name in str(e.value)
    assert Image.MAX_IMAGE_PIXELS == before
    assert size[0] * size[1] > MAX_PIXELS


def test_the_pixel_limit_is_a_parameter(tmp_path):
    p = _image(tmp_path / "a.png", (100, 100))
    assert check_image(p, max_pixels=10_000).width == 100
    with pytest.raises(BadImport, match="pixel limit of 9,999"):
        check_image(p, max_pixels=9_999)


def _mutated(data: bytes):
    """A valid file with up to 8 bytes changed (reaches deeper into the decoders than random bytes)."""

    def edit(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(data)
        for i, v in changes:
            out[i] = v
        return bytes(out)

    return st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=8).map(edit)


def _valid_bytes(fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 10), "red").save(buf, fmt)
    return buf.getvalue()


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=600).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
        st.binary(max_size=600).map(lambda b: b"\xff\xd8\xff\xe0" + b),
        _mutated(_valid_bytes("PNG")),
        _mutated(_valid_bytes("JPEG")),
        _mutated(_valid_bytes("GIF")),
        _mutated(_valid_bytes("BMP")),
        _mutated(_valid_bytes("TIFF")),
        _mutated(_valid_bytes("WEBP")),
    ),
    suffix=st.sampled_from([".png", ".jpg"]),
)
def test_check_image_fuzz_gives_info_or_bad_import(tmp_path, data, suffix):
    p = tmp_path / f"fuzz{suffix}"
    p.write_bytes(data)
    try:
        info = check_image(p, max_pixels=1_000_000)
    except BadImport as e:
        assert p.name in str(e)
    else:
        assert info.width * info.height <= 1_000_000 and info.size == len(data)


# -- find_images, safe_child, scene_from_image -------------------------------------------------------


def test_find_images_lists_image_files_and_skips_hidden_and_outside_links(tmp_path):
    root, outside = tmp_path / "root", _image(tmp_path / "outside.png")
    for rel in ("a.png", "B.JPG", "sub/c.webp", ".hidden.png", ".git/d.png"):
        _image(root / rel, fmt="WEBP" if rel.endswith("webp") else "PNG")
    (root / "notes.txt").write_text("no")
    (root / "link_out.png").symlink_to(outside)
    (root / "link_in.png").symlink_to(root / "a.png")
    (root / "dir_out").symlink_to(tmp_path, target_is_directory=True)
    base = root.resolve()
    assert find_images(root) == [base / "B.JPG", base / "a.png", base / "link_in.png", base / "sub/c.webp"]
    assert find_images(root, recursive=False) == [base / "B.JPG", base / "a.png", base / "link_in.png"]
    for bad in (tmp_path / "nope", outside):
        with pytest.raises(BadImport, match="folder"):
            find_images(bad)


@pytest.mark.parametrize("rel", ["../x", "/etc/passwd", "a/../../x", "", ".", "a/..", "a\x00b", "C:\\x.png"])
def test_safe_child_refuses_paths_leading_outside(tmp_path, rel):
    with pytest.raises(BadImport):
        safe_child(tmp_path, rel)


def test_safe_child_follows_links_only_inside(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "out").symlink_to(tmp_path, target_is_directory=True)
    (root / "in").symlink_to(root / "a", target_is_directory=True)
    with pytest.raises(BadImport, match="link"):
        safe_child(root, "out/secret.png")
    assert safe_child(root, "a/b.png") == root.resolve() / "a" / "b.png"
    assert safe_child(root, "a/../b.png") == root.resolve() / "b.png"
    assert safe_child(root, "in/b.png") == root.resolve() / "a" / "b.png"


def test_scene_from_image(tmp_path):
    s = scene_from_image(_image(tmp_path / "photo.jpg", (40, 30), "JPEG"))
    assert (s.id, s.width, s.height, s.objects, s.relations, s.split) == ("photo", 40, 30, (), (), "imported")
    assert Path(s.image).is_absolute() and s.meta["format"] == "JPEG"
    assert scene_from_image(tmp_path / "photo.jpg", "x", split="test").id == "x"


# -- GQA ----------------------------------------------------------------------------------------------


def _obj(name, x, y, w, h, *rels):
    return {
        "name": name,
        "x": x,
        "y": y,
        "w": w,
        "h": h,
        "attributes": [],
        "relations": [{"name": r, "object": o} for r, o in rels],
    }


#: 640x480 images: 5% of the area is 15360 px, 50% is 153600 px
GRAPHS = {
    "1": {
        "width": 640,
        "height": 480,
        "objects": {
            "10": _obj("Cup", 20, 200, 150, 150, ("to the left of", "11"), ("on", "12"), ("to the left of", "14")),
            "11": _obj("plate", 300, 200, 160, 150, ("to the right of", "10")),
            "12": _obj("table", -40, 330, 400, 200),  # sticks out of the image: clipped
            "13": _obj("wall", 0, 0, 640, 100, ("above", "10")),  # the authors' blacklist
            "14": _obj("crumb", 200, 100, 5, 5),  # under 5% of the image
        },
    },
    "2": {
        "width": 640,
        "height": 480,
        "objects": {  # a repeated name: dropped by the authors
            "20": _obj("chair", 10, 10, 150, 150, ("to the left of", "21")),
            "21": _obj("chair", 300, 10, 150, 150),
            "22": _obj("lamp", 100, 250, 150, 150, ("below", "20")),
        },
    },
    "3": {
        "width": 640,
        "height": 480,
        "objects": {  # one subject, one predicate, two objects: ambiguous
            "30": _obj("dog", 10, 10, 150, 150, ("next to", "31"), ("next to", "32")),
            "31": _obj("ball", 300, 10, 150, 150),
            "32": _obj("bench", 100, 250, 150, 150),
        },
    },
    "4": {
        "width": 640,
        "height": 480,
        "objects": {  # passes, but its image is missing
            "40": _obj("cat", 10, 10, 150, 150, ("above", "41")),
            "41": _obj("rug", 10, 300, 150, 150),
            "42": _obj("sofa", 300, 10, 150, 150),
        },
    },
    "5": {"width": 640, "height": 480, "objects": {}},
}


@pytest.fixture
def gqa(tmp_path):
    images = tmp_path / "images"
    for image_id in ("1", "2", "3"):
        _image(images / f"{image_id}.jpg", (640, 480), "JPEG")
    path = tmp_path / "train_sceneGraphs.json"
    path.write_text(json.dumps(GRAPHS))
    return path, images


def test_gqa_imports_with_the_authors_filter(gqa, caplog):
    path, images = gqa
    with caplog.at_level(logging.WARNING):
        scenes = read_gqa_scene_graphs(path, images)
    assert [s.id for s in scenes] == ["1"]
    assert "skipped 1" in caplog.text  # image 4 has no file
    s = scenes[0]
    assert [o.name for o in s.objects] == ["cup", "plate", "table"]  # lower case; wall and crumb dropped
    assert s.object("cup").box == Box(20, 200, 170, 350)
    assert s.object("table").box == Box(0, 330, 360, 480)
    # "on" is not one of the paper's relations; GQA's pair of directions gives one triple and its inverse
    assert set(s.relations) == {RelationTriple("cup", "left", "plate"), RelationTriple("plate", "right", "cup")}
    assert s.anchor == "cup" and s.target("cup", "right") == "plate" and s.target("plate", "left") == "cup"
    assert Path(s.image) == (images / "1.jpg").resolve() and (s.width, s.height) == (640, 480)
    assert s.meta["source"] == "gqa" and s.split == "imported"


def test_gqa_options_change_the_result(gqa):
    path, images = gqa
    _image(images / "4.jpg", (640, 480), "JPEG")
    ids = lambda **kw: [s.id for s in read_gqa_scene_graphs(path, images, GQAOptions(**kw))]  # noqa: E731
    assert ids() == ["1", "4"]
    assert ids(max_same_name=2) == ["1", "2", "4"]
    assert ids(one_object_per_predicate=False) == ["1", "3", "4"]
    assert ids(min_objects=4) == []
    # with tiny objects allowed the cup is left of two things, so image 1 is ambiguous and dropped
    assert ids(min_area_ratio=0.0) == ["4"]
    two_chairs = read_gqa_scene_graphs(path, images, GQAOptions(max_same_name=2))[1]
    assert [o.name for o in two_chairs.objects] == ["chair", "chair_2", "lamp"]
    assert RelationTriple("lamp", "below", "chair") in two_chairs.relations
    assert RelationTriple("chair", "above", "lamp") in two_chairs.relations
    dog = read_gqa_scene_graphs(path, images, GQAOptions(one_object_per_predicate=False))[1]
    assert dog.target("ball", "next_to") == "dog" and dog.target("dog", "next_to") is None
    on = read_gqa_scene_graphs(path, images, GQAOptions(relations={**GQA_RELATIONS, "ON": "on"}))[0]
    assert RelationTriple("cup", "on", "table") in on.relations
    assert not any(t.subject == "table" and t.object == "cup" for t in on.relations)  # "on" has no inverse
    plain = read_gqa_scene_graphs(path, images, GQAOptions(add_inverses=False))[0]
    assert set(plain.relations) == {RelationTriple("cup", "left", "plate"), RelationTriple("plate", "right", "cup")}
    with pytest.raises(SceneError):
        GQAOptions(min_objects=5, max_objects=2)


def test_gqa_refuses_when_no_image_exists_or_sizes_differ(gqa, tmp_path):
    path, _ = gqa
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadImport, match="none of the 2 images") as e:
        read_gqa_scene_graphs(path, empty)
    assert str(empty) in str(e.value)
    wrong = tmp_path / "wrong"
    _image(wrong / "1.jpg", (320, 240), "JPEG")
    with pytest.raises(BadImport, match=r"image '1'.*640x480.*320x240"):
        read_gqa_scene_graphs(path, wrong)
    with pytest.raises(BadImport, match="folder"):
        read_gqa_scene_graphs(path, tmp_path / "nowhere")


GOOD_OBJECTS = {"a": _obj("cup", 0, 0, 9, 9)}


@pytest.mark.parametrize(
    "text, where",
    [
        ("", "empty"),
        ("[]", "list"),
        ("{}", "no scene graphs"),
        ('{"1": {"width": 640}}', "image '1'.*'height'"),
        (
            '{"1": {"width": 640, "height": 480, "objects": {"a": {"name": "cup", "x": NaN, "y": 0, "w": 1, "h": 1}}}}',
            "NaN",
        ),
        (
            '{"1": {"width": 640, "height": 480, "objects": {"a": {"name": "cup", "x": 1e999, "y": 0, '
            '"w": 1, "h": 1}}}}',
            "image '1'.*x must be a finite number",
        ),
        (
            '{"1": {"width": 640, "height": 480, "objects": {"a": {"name": "cup", "x": '
            + "9" * 5000
            + ', "y": 0, "w": 1, "h": 1}}}}',
            "cannot be read",
        ),
        ('{"1": ' + "[" * 100_000 + "]" * 100_000 + "}", "cannot be read"),
        (
            '{"1": {"width": 640, "height": 480, "objects": {"a": {"name": "cup\\u202e", "x": 0, "y": 0, '
            '"w": 1, "h": 1}}}}',
            "U\\+202E",
        ),
        (
            '{"1": {"width": 640, "height": 480, "objects": {"a": {"name": 5, "x": 0, "y": 0, "w": 1, "h": 1}}}}',
            "name must be text",
        ),
        ('{"1": {"width": true, "height": 480, "objects": {}}}', "width must be a whole number"),
        ('{"../1": {"width": 640, "height": 480, "objects": {}}}', "image '../1'.*leads outside"),
        ('{"1": {"width": 640, "height": 480, "objects": {}}, "1": {}}', "appears twice"),
        ('{"1": {"width": 640, "height": 480, "objects": {}}} trailing', "extra data"),
        ('{"1": {"width": 640, "height": 480, "objects": {}}', "not valid JSON"),
    ],
)
def test_gqa_parse_errors_name_the_file_and_record(tmp_path, text, where):
    path = tmp_path / "graphs.json"
    path.write_text(text)
    with pytest.raises(BadImport, match=where) as e:
        read_gqa_scene_graphs(path, tmp_path)
    assert path.name in str(e.value)


def test_gqa_refuses_binary_garbage_and_folders(tmp_path):
    path = tmp_path / "graphs.json"
    path.write_bytes(b'{"\xff\xfe\x00\x81": 1}')
    with pytest.raises(BadImport, match="UTF-8"):
        read_gqa_scene_graphs(path, tmp_path)
    with pytest.raises(BadImport, match="is a folder"):
        read_gqa_scene_graphs(tmp_path, tmp_path)


_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
_json = st.recursive(
    _leaf, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=12
)


@st.composite
def _spoiled(draw, base):
    """A document from `base` with up to two values somewhere inside replaced by any JSON at all."""
    doc = draw(base)
    for _ in range(draw(st.integers(0, 2))):
        node = doc
        while isinstance(node, (dict, list)) and node:
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            if not isinstance(node[key], (dict, list)) or draw(st.booleans()):
                node[key] = draw(_json)
                break
            node = node[key]
    return doc


_ids = st.sampled_from(["a", "b", "c"])
_rel = st.fixed_dictionaries({"name": st.sampled_from([*GQA_RELATIONS, "on"]), "object": _ids})
_gqa_obj = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["cup", "plate", "cup", "sky", "Mug "]),
        **{k: st.sampled_from([*range(8), -2]) for k in "xy"},
        **{k: st.sampled_from([*range(1, 10), 0, -1]) for k in "wh"},
        "relations": st.lists(_rel, max_size=3),
    }
)
_graph = st.fixed_dictionaries(
    {"width": st.just(8), "height": st.just(8), "objects": st.dictionaries(_ids, _gqa_obj, min_size=1, max_size=3)}
)
_gqa_id = st.sampled_from(range(12)).map(lambda i: ["2", "../1", "\x00"][i] if i < 3 else "1")
_gqa_doc = _spoiled(st.dictionaries(_gqa_id, _graph, min_size=1, max_size=2))
_loose = GQAOptions(
    min_area_ratio=0.0,
    max_area_ratio=1.0,
    min_objects=1,
    min_relations=0,
    min_distinct_relations=0,
    max_same_name=3,
    one_object_per_predicate=False,
)


@pytest.fixture
def fuzz_dir(tmp_path):
    _image(tmp_path / "1.jpg", (8, 8), "JPEG")
    _image(tmp_path / "image_1.png", (64, 64))
    return tmp_path


def _scenes_or_bad_import(read, *args):
    try:
        scenes = read(*args)
    except BadImport as e:
        return e
    assert isinstance(scenes, list) and all(isinstance(s, Scene) for s in scenes)
    return scenes


@FUZZ
@given(doc=_json | _gqa_doc, options=st.sampled_from([GQAOptions(), _loose]))
def test_gqa_fuzz_json_gives_scenes_or_bad_import(fuzz_dir, doc, options):
    path = fuzz_dir / "graphs.json"
    path.write_text(json.dumps(doc))
    _scenes_or_bad_import(read_gqa_scene_graphs, path, fuzz_dir, options)


@FUZZ
@given(text=st.text(max_size=200) | st.binary(max_size=200))
def test_gqa_fuzz_text_gives_scenes_or_bad_import(fuzz_dir, text):
    path = fuzz_dir / "graphs.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    _scenes_or_bad_import(read_gqa_scene_graphs, path, fuzz_dir)


# -- the authors' synthetic metadata.csv ----------------------------------------------------------

ROLES = ["anchor", "above_object", "below_object", "left_object", "right_object", "random_object1"]
HEADER = ["image_name", *ROLES, *(f"{r}_pos" for r in ROLES), *(f"{r}_size" for r in ROLES)]


def _row(image, names, anchor_size="41 40"):
    pos = ["100 100", "100 60", "100 140", "60 100", "140 100", "20 20"]
    sizes = [anchor_size, "40 40", "40 40", "40 40", "40 40", "30 30"]
    return [image, *names, *pos, *sizes]


def _write_csv(path: Path, rows, header=HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


@pytest.fixture
def synthetic(tmp_path):
    folder = tmp_path / "synthetic_spatial_relation_test"
    for name in ("image_1.png", "image_2.png"):
        _image(folder / name, (200, 200))
    return _write_csv(
        folder / "metadata.csv",
        [
            _row("image_1.png", ["antiquemug", "apple", "book", "fork", "knife", "pear"]),
            _row("image_2.png", ["tomato", "greenbottle", "shoe", "socks", "tape", "chair"], "40 40"),
        ],
    )


def test_metadata_csv_gives_scenes_with_anchor_targets_and_boxes(synthetic):
    scenes = read_synthetic_metadata(synthetic)
    assert [s.id for s in scenes] == ["image_1", "image_2"]
    s = scenes[0]
    assert s.anchor == "mug"  # the authors' name correction (antiquemug -> mug)
    assert [s.target("mug", r) for r in ("above", "below", "left", "right")] == ["apple", "book", "fork", "knife"]
    assert RelationTriple("apple", "above", "mug") in s.relations
    assert RelationTriple("mug", "below", "apple") in s.relations  # the inverse, as the generator stores it
    assert len(s.relations) == 8 and not any("pear" in (t.subject, t.object) for t in s.relations)
    assert s.object("mug").box == Box(80, 80, 121, 120)  # pasted at the centre minus half the (odd) size
    assert s.object("apple").box == Box(80, 40, 120, 80)
    assert s.object("pear").box == Box(5, 5, 35, 35)
    assert s.split == "test" and Path(s.image) == (synthetic.parent / "image_1.png").resolve()
    assert s.meta["row"] == 1 and scenes[1].object("bottle")


def test_metadata_csv_images_folder_and_missing_images(synthetic, tmp_path, caplog):
    other = tmp_path / "other"
    _image(other / "image_2.png", (200, 200))
    with caplog.at_level(logging.WARNING):
        scenes = read_synthetic_metadata(synthetic, other)
    assert [s.id for s in scenes] == ["image_2"] and "skipped 1" in caplog.text
    (other / "image_2.png").unlink()
    with pytest.raises(BadImport, match="none of the 2 images"):
        read_synthetic_metadata(synthetic, other)


@pytest.mark.parametrize("image, row", [("../outside.png", 2), ("/etc/passwd", 2), ("sub/../../x.png", 2)])
def test_metadata_row_escaping_the_folder_is_named(tmp_path, image, row):
    _image(tmp_path / "outside.png")
    path = _write_csv(
        tmp_path / "set" / "metadata.csv",
        [
            _row("image_1.png", ["cup", "apple", "book", "fork", "knife", "pear"]),
            _row(image, ["cup", "apple", "book", "fork", "knife", "pear"]),
        ],
    )
    _image(tmp_path / "set" / "image_1.png", (200, 200))
    with pytest.raises(BadImport, match=f"row {row}") as e:
        read_synthetic_metadata(path)
    assert "metadata.csv" in str(e.value)


NAMES = ["cup", "apple", "book", "fork", "knife", "pear"]


@pytest.mark.parametrize(
    "header, rows, match",
    [
        ([c for c in HEADER if c != "anchor_pos"], [], "missing columns.*anchor_pos"),
        (["image_name", "anchor", "anchor_pos", "anchor_size"], [], "no <relation>_object column"),
        (HEADER, [], "no rows"),
        (HEADER, [_row("image_1.png", NAMES)[:-1]], "row 1.*fields"),
        (HEADER, [_row("image_1.png", ["cup", "cup", *NAMES[2:]])], "row 1.*unique"),
        (HEADER, [_row("image_1.png", ["antique", *NAMES[1:]])], "row 1.*anchor"),
        (HEADER, [_row("image_1.png", NAMES, anchor_size="0 40")], "row 1.*anchor_size"),
        (HEADER, [_row("image_1.png", NAMES, anchor_size="nan 40")], "row 1.*anchor_size"),
        (HEADER, [_row("image_1.png", NAMES, anchor_size="1e400 40")], "row 1.*anchor_size"),
        (HEADER, [_row("image_1.png", NAMES), _row("image_1.png", NAMES)], "row 2.*listed again"),
        (HEADER, [_row("notes.png", NAMES)], "row 1.*notes.png"),
        (HEADER, [_row("image_1.png", ["cup\x07", *NAMES[1:]])], "row 1.*U\\+0007"),
    ],
)
def test_metadata_csv_errors_name_the_file_and_row(tmp_path, header, rows, match):
    _image(tmp_path / "image_1.png", (200, 200))
    (tmp_path / "notes.png").write_text("not an image")
    path = _write_csv(tmp_path / "metadata.csv", rows, header)
    with pytest.raises(BadImport, match=match) as e:
        read_synthetic_metadata(path)
    assert "metadata.csv" in str(e.value)


def test_metadata_csv_refuses_empty_binary_and_folders(tmp_path):
    path = tmp_path / "metadata.csv"
    path.write_bytes(b"")
    with pytest.raises(BadImport, match="empty"):
        read_synthetic_metadata(path)
    path.write_bytes(b"image_name,anchor\n\xff\xfe\x00garbage\x81\n")
    with pytest.raises(BadImport, match="UTF-8"):
        read_synthetic_metadata(path)
    with pytest.raises(BadImport, match="is a folder"):
        read_synthetic_metadata(tmp_path)


_cell = st.sampled_from(
    ["image_1.png", "cup", "10 10", "5 5", "../x.png", "nan 1", "", "1e999 1", "a,b", '"']
) | st.text(max_size=6)
_xy = st.tuples(st.integers(-10, 80), st.integers(-10, 80)).map(lambda t: f"{t[0]} {t[1]}")


@st.composite
def _csv_text(draw) -> str:
    """A metadata.csv in the authors' format, mostly sensible, with a few cells (or the header) spoiled."""
    header = list(HEADER)
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        image = draw(st.sampled_from(["image_1.png", "image_1.png", "gone.png", "sub/../image_1.png", "../x.png"]))
        rows.append(
            [
                image,
                *draw(st.permutations(NAMES)),
                *(draw(_xy) for _ in ROLES),
                *(draw(_xy).replace("-", "") for _ in ROLES),
            ]
        )
    for table in draw(st.lists(st.sampled_from([header, *rows]), max_size=3)):
        i = draw(st.integers(0, len(table)))
        table[i : i + draw(st.integers(0, 1))] = [draw(_cell)]
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    return out.getvalue()


@FUZZ
@given(text=st.text(max_size=300) | _csv_text())
def test_metadata_csv_fuzz_gives_scenes_or_bad_import(fuzz_dir, text):
    path = fuzz_dir / "metadata.csv"
    path.write_text(text, encoding="utf-8")
    _scenes_or_bad_import(read_synthetic_metadata, path)


def test_importing_the_module_does_not_import_torch():
    code = "import sys, mfv_desktop.scenes.importers; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
