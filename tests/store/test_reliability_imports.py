"""Issue 15: imports a clumsy or hostile user can throw at the store, and the paths jobs build from names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mfv_desktop.progress import run_to_end
from mfv_desktop.scenes import SceneError
from mfv_desktop.scenes.importers import BadImport, check_image, scene_from_image
from mfv_desktop.store import scenes as repo
from mfv_desktop.store.exchange import export_dataset, import_dataset_export, import_images

SUFFIX = {"BMP": ".bmp", "GIF": ".gif", "WEBP": ".webp", "TIFF": ".tif", "MPO": ".jpg", "JPEG": ".jpg"}


def _picture(path: Path, fmt: str, size=(32, 24), colour="teal") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour)
    if fmt == "MPO":  # a phone's JPEG with a second picture
        img.save(path, "MPO", save_all=True, append_images=[Image.new("RGB", size, "red")])
    else:
        img.save(path, fmt)
    return path


def mfv(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-m", "mfv_desktop.cli", "-q", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


# -- defect 2: every format the message promises opens ------------------------------------------------
@pytest.mark.parametrize("fmt", ["BMP", "GIF", "WEBP", "TIFF", "MPO"])
def test_every_promised_image_format_imports_and_applies(store, tmp_path, fmt):
    from mfv_desktop.jobs.vectors import _image_shot

    p = _picture(tmp_path / "in" / f"pic{SUFFIX[fmt]}", fmt)
    assert check_image(p).format == fmt
    assert (scene_from_image(p).width, scene_from_image(p).height) == (32, 24)
    assert _image_shot(str(p), "cup", "", "query").image == str(p.resolve())  # apply --image, analogy images
    res = run_to_end(import_images(store, [tmp_path / "in"], "pics"))
    assert (res["added"], res["not_images"]) == (1, [])
    (summary,) = repo.page_scenes(store, dataset="pics")
    assert summary.image.is_file() and (summary.width, summary.height) == (32, 24)


# -- defect 12: EXIF-rotated photos are stored upright --------------------------------------------------
def test_an_exif_rotated_photo_is_stored_upright_with_its_original_hash(store, tmp_path):
    import hashlib

    img = Image.new("RGB", (40, 20), "white")
    img.paste((255, 0, 0), (0, 0, 10, 20))  # the left edge is red as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: the red edge at the top
    p = tmp_path / "phone.jpg"
    img.save(p, "JPEG", exif=exif, quality=95)
    run_to_end(import_images(store, [p], "photos"))
    (summary,) = repo.page_scenes(store, dataset="photos")
    scene, _ = repo.get_scene(store, summary.id)
    assert (summary.width, summary.height) == (scene.width, scene.height) == (20, 40)
    with Image.open(summary.image) as stored:  # canvas, thumbnail and model all read this file
        assert stored.size == (20, 40) and stored.getexif().get(0x0112, 1) == 1
        r, g, b = stored.convert("RGB").getpixel((10, 2))
        assert r > 200 and g < 80
    assert scene.meta["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert scene.meta["exif_orientation"] == 6


def _phone_photo(path: Path) -> Path:
    img = Image.new("RGB", (40, 20), "white")
    img.paste((255, 0, 0), (0, 0, 10, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, "JPEG", exif=exif, quality=95)
    return path


def test_a_rotated_photo_from_outside_the_store_is_upright_for_the_model_and_on_screen(tiny, qapp, tmp_path):
    """`apply --image` and the apply tab's "open an image" read the file itself, not a stored copy."""
    from PIL import ImageOps

    from mfv_desktop.ui.curation.scene_view import SceneView

    photo = _phone_photo(tmp_path / "phone.jpg")
    with Image.open(photo) as im:
        ImageOps.exif_transpose(im).save(tmp_path / "upright.png")
    assert (tiny.image_tensor(str(photo)) == tiny.image_tensor(str(tmp_path / "upright.png"))).all()
    view = SceneView()
    assert view.show_image(photo)
    rect = view.scene().sceneRect()
    assert (rect.width(), rect.height()) == (20, 40)


# -- defects 2, 3, 12: `mfv import images` from the command line ---------------------------------------
def test_import_images_with_relative_paths_links_and_failures(tmp_path):
    for i, fmt in enumerate(("BMP", "GIF", "WEBP", "TIFF")):
        _picture(tmp_path / "imgs" / "sub" / f"p{i}{SUFFIX[fmt]}", fmt, colour=(i * 40, 0, 0))
    (tmp_path / "link").symlink_to("imgs")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not a picture")
    for i, folder in enumerate(("imgs", "./imgs/", "link")):
        r = mfv(tmp_path, "--store", "st", "import", "images", folder, "--dataset", f"d{i}")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["added"] == 4
    r = mfv(tmp_path, "--store", "st", "import", "images", "/nonexistent/pics")
    assert r.returncode != 0 and "/nonexistent/pics" in r.stderr
    r = mfv(tmp_path, "--store", "st", "import", "images", "bad", "--dataset", "junk")
    assert r.returncode != 0 and "broken.png" in r.stderr
    r = mfv(tmp_path, "--store", "st", "datasets")
    assert [d["name"] for d in map(json.loads, r.stdout.splitlines())] == ["d0", "d1", "d2"]
    runs = [json.loads(line) for line in mfv(tmp_path, "--store", "st", "runs").stdout.splitlines()]
    assert [(r["kind"], r["status"]) for r in runs] == [("import", "done")] * 3 + [("import", "failed")] * 2
    assert "broken.png" in runs[-1]["message"]
    r = mfv(tmp_path, "--store", "st", "resume", str(runs[-1]["id"]))
    assert r.returncode == 2 and "cannot be resumed" in r.stderr and "Traceback" not in r.stderr


def test_jobs_on_a_relative_store_find_the_data_sets_images(tmp_path):
    assert mfv(tmp_path, "--store", "st", "generate", "--dataset", "g", "--n", "6", "--canvas", "256").returncode == 0
    r = mfv(tmp_path, "--store", "st", "tasks", "dataset:g", "t.json", "--k", "1")
    assert r.returncode == 0, r.stderr
    tasks = json.loads(Path(json.loads(r.stdout)["file"]).read_text())["tasks"]
    images = {t["query"]["image"] for t in tasks} | {d["image"] for t in tasks for d in t["demos"]}
    assert images and all(Path(p).is_absolute() and Path(p).is_file() for p in images)
    for line in (tmp_path / "st" / "runs" / "2" / "input-scenes" / "scenes.jsonl").read_text().splitlines():
        assert Path(json.loads(line)["image"]).is_file()


# -- defects 7 and 11: hostile records are refused whole, naming the file, the record and the field -------
@pytest.fixture
def export(store, abs_scenes, tmp_path):
    run_to_end(repo.add_scenes(store, "src", abs_scenes[:2]))
    folder = export_dataset(store, "src", tmp_path / "exp")
    return folder, json.loads((folder / "dataset.json").read_text())


def _spoil(doc: dict, field: str, value) -> dict:
    doc = json.loads(json.dumps(doc))
    scene = doc["scenes"][1]
    if field == "relation":
        scene["relations"][0][1] = value
        scene["labels"][0]["relation"] = value
    elif field == "object":
        old = scene["objects"][0]["name"]
        scene["objects"][0]["name"] = value
        scene["relations"] = [[value if n == old else n for n in t] for t in scene["relations"]]
        scene["labels"] = [
            {**lb, **{k: value for k in ("subject", "object") if lb[k] == old}} for lb in scene["labels"]
        ]
        scene["anchor"] = value if scene["anchor"] == old else scene["anchor"]
    elif field == "id":
        scene["id"] = value
    else:  # box
        scene["objects"][0]["box"] = value
    return doc


HOSTILE = [
    ("relation", "../../../x", "relation name"),
    ("relation", "/abs/dir", "relation name"),
    ("relation", "..", "relation name"),
    ("relation", "left\u202eright", "U+202E"),
    ("object", "", "object 0 name"),
    ("object", "x" * (1 << 20), "object 0 name"),
    ("object", "cup\x07", "U+0007"),
    ("object", "a/b", "object 0 name"),
    ("id", "y" * 5000 + "\nz", "scene id"),
    ("box", [-5, 0, 10, 10], "outside"),
    ("box", [0, 0, 10_000, 10], "outside"),
]


@pytest.mark.parametrize("field, value, named", HOSTILE, ids=[f"{f}-{n}" for f, _, n in HOSTILE])
def test_hostile_names_ids_and_boxes_are_refused_and_nothing_is_added(store, export, field, value, named):
    folder, good = export
    (folder / "dataset.json").write_text(json.dumps(_spoil(good, field, value)))
    before = repo.datasets(store)
    with pytest.raises(BadImport) as e:
        run_to_end(import_dataset_export(store, folder, "hostile"))
    assert "dataset.json" in str(e.value) and "scene 1" in str(e.value) and named in str(e.value)
    assert repo.datasets(store) == before  # no empty "hostile" data set either


def test_a_failure_after_the_first_batch_removes_what_the_import_added(store, export, tmp_path):
    from mfv_desktop.jobs.stored import runs

    folder, good = export
    first = good["scenes"][0]
    doc = {**good, "scenes": [{**first, "id": f"s{i:03d}"} for i in range(250)]}
    _picture(folder / "images" / "other.png", "PNG", (first["width"], first["height"]), "navy")
    (folder / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    doc["scenes"][10]["image"] = "images/other.png"  # a new image file, in the first batch
    doc["scenes"][230]["image"] = "images/broken.png"  # found only while adding the second batch
    (folder / "dataset.json").write_text(json.dumps(doc))

    def state():
        return repo.datasets(store), repo.count_scenes(store), sorted(store.data_dir.glob("images/*/*"))

    before = state()
    with pytest.raises(BadImport, match="broken.png"):
        run_to_end(import_dataset_export(store, folder, "big"))
    assert state() == before
    with pytest.raises(BadImport, match="broken.png"):  # into an existing data set: it keeps what it had
        run_to_end(import_dataset_export(store, folder, "src"))
    assert state() == before
    assert [(r.kind, r.status) for r in runs(store)] == [("import", "failed")] * 2


@pytest.mark.parametrize("name", ["../../../x", "/abs/dir", "..", "a\\b", "con", "x" * 300, "next to", "above"])
def test_a_relation_name_is_one_plain_folder_name(tmp_path, name):
    from mfv_desktop.scenes import path_part

    part = path_part(name)
    assert (tmp_path / part).resolve().parent == tmp_path.resolve() and len(part) <= 64
    assert part.replace("-", "").replace("_", "").isalnum()
    assert (part == name) == (name == "above")


def test_a_job_given_a_hostile_relation_writes_nothing_outside_its_folder(tmp_path, scene_folder):
    from mfv_desktop.jobs import AIESpec, execute, run_aie
    from mfv_desktop.scenes import RelationTriple, load_scene_set, save_scene_set
    from mfv_desktop.tasks import TaskError

    hostile = "../../../escape"
    scenes = [
        s.with_(relations=(*s.relations, RelationTriple(s.relations[0].subject, hostile, s.relations[0].object)))
        for s in load_scene_set(scene_folder)[:8]
    ]
    data = tmp_path / "scenes"
    save_scene_set(data, [s.with_(image=str(Path(scene_folder, s.image).resolve())) for s in scenes])
    out = tmp_path / "a" / "b" / "c" / "out"
    with pytest.raises(SceneError, match="relation name"):  # a scene set that holds it is refused by name
        run_to_end(
            execute(
                AIESpec(scenes=str(data), out=str(out), relations=(hostile,), model="tiny", n_prompts=4, k=1),
                run_aie,
                out,
            )
        )
    with pytest.raises(TaskError, match="escape"):  # the spec alone: no scene has it, and no path leads out
        run_to_end(
            execute(
                AIESpec(scenes=str(scene_folder), out=str(out), relations=(hostile,), model="tiny", n_prompts=4, k=1),
                run_aie,
                out,
            )
        )
    outside = [
        p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(out) and not p.is_relative_to(data)
    ]
    assert outside == []
