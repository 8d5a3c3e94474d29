"""The store: opening, locking, migrations, artifacts, scenes and labels, on temporary file DBs."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from mfv_desktop.store import (
    ArtifactCorrupt,
    StoreError,
    StoreLocked,
    StoreReadOnly,
    StoreTooNew,
    known_revisions,
    open_store,
)
from mfv_desktop.store import (
    models as m,
)
from mfv_desktop.store import scenes as repo

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store-r0001"


def _pragma(store, name):
    with store.engine.connect() as c:
        return c.exec_driver_sql(f"PRAGMA {name}").scalar()


def test_a_new_store_is_at_the_newest_revision_with_wal_and_foreign_keys(store):
    _, head = known_revisions()
    assert store.revision() == head
    assert _pragma(store, "journal_mode") == "wal"
    assert _pragma(store, "foreign_keys") == 1
    assert store.integrity_check() == "ok"
    names = {r.name: r.kind for r in repo.relations(store)}
    assert names["above"] == "base" and names["below_left"] == "composite"


def test_the_app_knows_every_migration():
    from mfv_desktop.store.db import REVISIONS, migration_revisions

    assert migration_revisions() == (set(REVISIONS), REVISIONS[-1])


def test_the_schema_the_migrations_build_is_the_models_schema(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with store.engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), m.Base.metadata)
    assert diff == []


def test_a_second_writer_is_refused_and_a_reader_may_look(store):
    with pytest.raises(StoreLocked, match="in use by another mfv_desktop process"):
        open_store(store.data_dir)
    with store.session() as s:
        s.add(m.Dataset(name="mine"))
    reader = open_store(store.data_dir, read_only=True)
    try:
        assert [d["name"] for d in repo.datasets(reader)] == ["mine"]
        with pytest.raises(StoreReadOnly, match="read-only"):
            with reader.session() as s:
                s.add(m.Dataset(name="theirs"))
    finally:
        reader.close()
    store.close()
    again = open_store(store.data_dir)  # the lock went with the first writer
    again.close()


def test_the_previous_revision_upgrades_with_its_data_and_a_backup(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    before = (data / "store.sqlite").read_bytes()
    with open_store(data) as store:
        _, head = known_revisions()
        assert store.revision() == head
        (ds,) = repo.datasets(store)
        assert ds["name"] == "kitchen" and ds["n_scenes"] == 2
        scene, labels = repo.get_scene(store, 1)
        assert [o.name for o in scene.objects] == ["cup", "apple", "key"]
        assert {(lb.subject, lb.relation, lb.object, lb.status) for lb in labels} == {
            ("apple", "above", "cup", "confirmed"),
            ("key", "next to", "cup", "suggested"),
        }
        assert scene.image.endswith(".png") and Path(scene.image).is_file()
        with store.session() as s:  # the new column was filled from what the scene knew
            assert [r.origin for r in s.query(m.Scene).order_by(m.Scene.id)] == ["generated", "imported"]
    (backup,) = (data / "backups").glob("store-r0001-*.sqlite")
    assert backup.read_bytes()[:16] == before[:16]
    con = sqlite3.connect(backup)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
    assert con.execute("SELECT count(*) FROM labels").fetchone() == (4,)
    con.close()


def test_migrations_downgrade_and_upgrade_again(tmp_path):
    from alembic import command
    from sqlalchemy import create_engine

    from mfv_desktop.store.db import _alembic_config

    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    open_store(data).close()
    engine = create_engine(f"sqlite:///{data / 'store.sqlite'}")
    with engine.begin() as c:
        command.downgrade(_alembic_config(c), "0001")
    con = sqlite3.connect(data / "store.sqlite")
    assert con.execute("SELECT count(*) FROM labels").fetchone() == (4,)  # curation survives
    assert "runs" not in {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    con.close()
    with engine.begin() as c:
        command.downgrade(_alembic_config(c), "base")
    engine.dispose()
    with open_store(data) as store:
        assert store.revision() == known_revisions()[1]


def test_a_database_from_a_newer_app_is_refused_untouched(tmp_path):
    data = tmp_path / "data"
    open_store(data).close()
    con = sqlite3.connect(data / "store.sqlite")
    con.execute("UPDATE alembic_version SET version_num = '9999'")
    con.commit()
    con.close()
    before = (data / "store.sqlite").read_bytes()
    with pytest.raises(StoreTooNew, match="newer mfv_desktop.*9999"):
        open_store(data)
    assert (data / "store.sqlite").read_bytes() == before
    with pytest.raises(StoreTooNew):
        open_store(data, read_only=True)


def test_files_that_are_not_stores_are_named(tmp_path):
    bad = tmp_path / "garbage"
    bad.mkdir()
    (bad / "store.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="store.sqlite is not a readable database"):
        open_store(bad)
    other = tmp_path / "other"
    other.mkdir()
    con = sqlite3.connect(other / "store.sqlite")
    con.execute("CREATE TABLE photos (id INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not an mfv_desktop store"):
        open_store(other)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match="is a file, not a data folder"):
        open_store(tmp_path / "afile")


def test_artifacts_are_content_addressed_and_verified(store):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    h = store.artifacts.put({"aie": a}, {"relation": "above"})
    assert h == store.artifacts.put({"aie": a}, {"relation": "above"})  # same content, same file
    np.testing.assert_array_equal(store.artifacts.get(h)["aie"], a)
    assert store.artifacts.meta(h) == {"relation": "above"}
    p = store.artifacts.path(h)
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(ArtifactCorrupt, match="does not match its hash"):
        store.artifacts.get(h)
    p.unlink()
    with pytest.raises(ArtifactCorrupt, match="missing"):
        store.artifacts.get(h)


def test_scenes_round_trip_page_and_filter(store, abs_scenes):
    from mfv_desktop.progress import run_to_end
    from mfv_desktop.scenes import load_scene_set

    res = run_to_end(repo.add_scenes(store, "gen", abs_scenes, origin="generated", batch=10))
    assert res == {"dataset": "gen", "added": len(abs_scenes), "skipped": 0}
    assert run_to_end(repo.add_scenes(store, "gen", abs_scenes[:5]))["skipped"] == 5  # importing twice adds nothing
    assert repo.count_scenes(store, "gen") == len(abs_scenes)
    assert repo.count_scenes(store, "gen", split="b") == sum(s.split == "b" for s in abs_scenes)
    n_above = sum("above" in s.relation_names() for s in abs_scenes)
    assert repo.count_scenes(store, "gen", relation="above") == n_above
    page = repo.page_scenes(store, offset=10, limit=5, dataset="gen")
    assert [p.name for p in page] == [s.id for s in abs_scenes[10:15]]
    assert all(p.image.is_file() and p.n_objects == len(abs_scenes[10].objects) for p in page)
    # images live in the data folder, addressed by content; nothing points outside it
    for p in page:
        assert p.image.is_relative_to(store.data_dir / "images")
    first, labels = repo.get_scene(store, page[0].id)
    assert first.objects == abs_scenes[10].objects and set(first.relations) == set(abs_scenes[10].relations)
    assert all(lb.status == "confirmed" and lb.source == "import" for lb in labels)
    # the data set as a scene set the engine reads
    out = repo.write_scene_set(store, "gen", store.data_dir / "export")
    again = load_scene_set(out)
    assert [s.id for s in again] == [s.id for s in abs_scenes]
    assert again[3].relations == abs_scenes[3].relations


def test_labels_confirm_reject_and_suggest(store, abs_scenes):
    from mfv_desktop.progress import run_to_end

    scene = abs_scenes[0].with_(relations=())
    run_to_end(repo.add_scenes(store, "mine", [scene]))
    (row,) = repo.page_scenes(store, dataset="mine")
    base = ("above", "below", "left", "right")
    suggested = repo.suggest_labels(store, row.id, relations=base)
    assert suggested
    data, labels = repo.get_scene(store, row.id)
    assert data.relations == ()  # suggestions are not relations until confirmed
    assert {lb.status for lb in labels} == {"suggested"}
    repo.set_label_status(store, labels[0].id, "confirmed")
    repo.set_label_status(store, labels[1].id, "rejected")
    data, labels = repo.get_scene(store, row.id)
    assert [(t.subject, t.relation, t.object) for t in data.relations] == [
        (labels[0].subject, labels[0].relation, labels[0].object)
    ]
    assert repo.suggest_labels(store, row.id, relations=base) == []  # labelled pairs are not suggested again
    new = repo.add_label(store, row.id, scene.objects[0].name, "next to", scene.objects[1].name)
    assert "next to" in {r.name for r in repo.relations(store)}  # the vocabulary learns it
    assert (
        repo.add_label(store, row.id, scene.objects[0].name, "next to", scene.objects[1].name, status="rejected") == new
    )
    with pytest.raises(StoreError, match="no object named 'zebra'"):
        repo.add_label(store, row.id, "zebra", "above", scene.objects[0].name)
    assert repo.count_scenes(store, "mine", status="suggested") == 1


def _valid_export(store, abs_scenes, folder):
    from mfv_desktop.progress import run_to_end
    from mfv_desktop.store.exchange import export_dataset

    run_to_end(repo.add_scenes(store, "src", abs_scenes[:2]))
    return export_dataset(store, "src", folder)


def test_hostile_dataset_exports_give_clear_errors_and_change_nothing(store, abs_scenes, tmp_path):
    import json

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from mfv_desktop.progress import run_to_end
    from mfv_desktop.scenes.importers import BadImport
    from mfv_desktop.store.exchange import import_dataset_export, read_dataset_export

    folder = _valid_export(store, abs_scenes, tmp_path / "exp")
    good = json.loads((folder / "dataset.json").read_text())
    before = repo.count_scenes(store)
    leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    anything = st.recursive(
        leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=20
    )

    def mutate(doc, draw_key, value):
        doc = json.loads(json.dumps(doc))
        scene = doc["scenes"][0]
        target = scene if draw_key in scene else doc
        target[draw_key] = value
        return doc

    keys = st.sampled_from(["image", "objects", "labels", "relations", "width", "anchor", "id", "scenes", "format"])

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(anything, st.builds(mutate, st.just(good), keys, anything)))
    def check(doc):
        (folder / "dataset.json").write_text(json.dumps(doc))
        try:
            header, scenes, labels = read_dataset_export(folder)
        except BadImport:
            return
        for sc in scenes:  # whatever parses stays inside the export folder
            assert Path(sc.image).resolve().is_relative_to(folder.resolve())

    check()
    for text in ("", "{", "\x00\x01binary", '{"format": "mfv-dataset/1", "scenes": [{"image": "../../etc/passwd"}]}'):
        (folder / "dataset.json").write_text(text)
        with pytest.raises(BadImport, match="dataset.json"):
            run_to_end(import_dataset_export(store, folder, "hostile"))
    doc = json.loads(json.dumps(good))
    doc["scenes"][1]["labels"][0]["object"] = "nobody"  # the second scene is bad: nothing of it is stored
    (folder / "dataset.json").write_text(json.dumps(doc))
    with pytest.raises(BadImport, match="needs two of its objects"):
        run_to_end(import_dataset_export(store, folder, "hostile"))
    assert repo.count_scenes(store) == before  # the batch with the bad scene was rolled back whole


def test_the_data_folder_is_the_users_unless_named(monkeypatch, tmp_path):
    from mfv_desktop.store import default_data_dir

    monkeypatch.setenv("MFV_DATA_DIR", str(tmp_path / "mine"))
    assert default_data_dir() == tmp_path / "mine"
    monkeypatch.delenv("MFV_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / ".local" / "share"))
    folder = default_data_dir()
    assert folder.name == "mfv_desktop" and folder.is_relative_to(tmp_path / "home")
    repo_root = Path(__file__).resolve().parents[2]
    assert not folder.is_relative_to(repo_root)  # never the install folder


def test_object_edits_and_their_undo_data(store, abs_scenes):
    from mfv_desktop.scenes import Box

    sid = repo.create_scene(store, "mine", abs_scenes[0].image, "photo")
    assert repo.create_scene(store, "mine", abs_scenes[0].image, "photo") != sid  # a second one gets "photo_2"
    a = repo.add_object(store, sid, "cup", Box(10, 10, 40, 40))
    b = repo.add_object(store, sid, "apple", Box(10, 60, 40, 90))
    with pytest.raises(StoreError, match="already has an object named 'cup'"):
        repo.add_object(store, sid, "cup", Box(0, 0, 5, 5))
    with pytest.raises(StoreError, match="outside the 256x256 image"):
        repo.set_box(store, a, Box(200, 200, 300, 300))
    repo.set_box(store, a, Box(12, 10, 42, 40))
    repo.rename_object(store, b, "pear")
    repo.add_label(store, sid, "cup", "above", "pear")
    gone = repo.delete_object(store, a)
    assert [o.name for o in repo.objects(store, sid)] == ["pear"] and repo.get_scene(store, sid)[1] == []
    repo.restore_object(store, gone)
    data, labels = repo.get_scene(store, sid)
    assert data.object("cup").box == Box(12, 10, 42, 40)
    assert [(lb.subject, lb.relation, lb.object) for lb in labels] == [("cup", "above", "pear")]
    repo.set_label_relation(store, labels[0].id, "left")
    assert repo.delete_label(store, labels[0].id).relation == "left" and repo.get_scene(store, sid)[1] == []
