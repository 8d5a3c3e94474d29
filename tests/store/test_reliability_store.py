"""The store under a clumsy or hostile world: a kill mid-migration, damaged files, read-only media, a full
disk, writes through a read-only store, and ingests that run twice."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mfv_desktop import cli
from mfv_desktop.progress import run_to_end
from mfv_desktop.store import (
    StoreCorrupt,
    StoreDiskFull,
    StoreReadOnlyMedia,
    known_revisions,
    open_store,
    restore_backup,
    usable_backups,
)
from mfv_desktop.store import (
    models as m,
)
from mfv_desktop.store import scenes as repo

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store-r0001"

#: in a child process: open the store with Alembic killing the process right after its first ALTER TABLE
KILL_AFTER_FIRST_ALTER = """
import os, signal, sys
from alembic.ddl.impl import DefaultImpl
add_column = DefaultImpl.add_column
def killed(self, *a, **k):
    add_column(self, *a, **k)
    os.kill(os.getpid(), signal.SIGKILL)
DefaultImpl.add_column = killed
from mfv_desktop.store import open_store
open_store(sys.argv[1])
"""


def _kitchen(store) -> tuple:
    (ds,) = repo.datasets(store)
    scene, labels = repo.get_scene(store, 1)
    return ds["name"], ds["n_scenes"], [o.name for o in scene.objects], len(labels)


def test_a_kill_during_a_migration_leaves_a_store_that_opens_migrated_with_one_backup(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    child = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_FIRST_ALTER, str(data)],
        capture_output=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=120,
    )
    assert child.returncode == -9, child.stderr.decode()[-2000:]
    for _ in range(3):  # every later open works, and backs up nothing more
        with open_store(data) as store:
            assert store.revision() == known_revisions()[1] and store.integrity_check() == "ok"
            assert _kitchen(store) == ("kitchen", 2, ["cup", "apple", "key"], 2)
    (kept,) = (data / "backups").glob("*.sqlite")
    assert [b.path for b in usable_backups(data)] == [kept]
    con = sqlite3.connect(kept)
    assert con.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
    con.close()
    assert sorted(p.name for p in data.iterdir()) == ["backups", "images", "store.lock", "store.sqlite"]


def test_a_store_a_crashed_migration_broke_names_its_backup_keeps_it_and_restores(tmp_path, capsys):
    """The state an older app left: the new column is there, alembic_version says the old revision."""
    data = tmp_path / "data"
    shutil.copytree(FIXTURE, data)
    (data / "backups").mkdir()
    good = data / "backups" / "store-r0001-20260101-000000.sqlite"
    shutil.copyfile(data / "store.sqlite", good)
    con = sqlite3.connect(data / "store.sqlite")
    con.execute("ALTER TABLE scenes ADD COLUMN origin VARCHAR DEFAULT 'imported' NOT NULL")
    con.commit()
    con.close()
    for _ in range(7):  # retries neither crash nor rotate the good backup out
        with pytest.raises(StoreCorrupt) as e:
            open_store(data)
        assert "duplicate column name" in str(e.value) and "was not changed" in str(e.value)
        assert f"newest usable backup is {good}" in str(e.value) and "backups --restore" in str(e.value)
        assert e.value.kind == "corrupt" and [b.path for b in e.value.backups] == [good]
    assert list((data / "backups").iterdir()) == [good]
    assert cli.main(["--store", str(data), "backups", "--restore", str(good)]) == 0
    assert "the previous file is" in capsys.readouterr().out
    (broken,) = data.glob("store.sqlite.broken-*")
    assert "origin" in {r[1] for r in sqlite3.connect(broken).execute("PRAGMA table_info(scenes)")}
    with open_store(data) as store:
        assert store.revision() == known_revisions()[1]
        assert _kitchen(store) == ("kitchen", 2, ["cup", "apple", "key"], 2)


def _many_datasets(data: Path, n: int = 3000) -> None:
    with open_store(data) as store:
        with store.session() as s:
            for i in range(n):
                s.add(m.Dataset(name=f"set {i:05d} " + "x" * 40, description="y" * 50))


def test_a_damaged_page_or_header_is_reported_as_corrupt_with_its_backups_and_a_backup_restores(tmp_path):
    from mfv_desktop.store import backup

    data = tmp_path / "data"
    _many_datasets(data)
    saved = backup(data / "store.sqlite", "manual")
    db = data / "store.sqlite"
    raw = bytearray(db.read_bytes())
    page = 4096 * (len(raw) // 4096 // 2)
    raw[page + 1024 : page + 3072] = b"\xff" * 2048  # the middle of a page in the middle of the file
    db.write_bytes(bytes(raw))
    for read_only in (False, True):
        with pytest.raises(StoreCorrupt, match="is damaged.*quick check") as e:
            open_store(data, read_only=read_only)
        assert [b.path for b in e.value.backups] == [saved] and str(saved) in str(e.value)
    kept = restore_backup(data, saved)
    assert kept is not None and kept.read_bytes() == bytes(raw)
    with open_store(data) as store:
        assert len(repo.datasets(store)) == 3000 and store.integrity_check() == "ok"
    db.write_bytes(b"\0" * 100 + db.read_bytes()[100:])  # a damaged header
    with pytest.raises(StoreCorrupt, match="not a readable database") as e:
        open_store(data)
    assert e.value.backups[0].path == saved


def _read_only_folder(monkeypatch, folder: Path) -> None:
    """Make `folder` unwritable. Root writes through chmod, so there (as in this container) the folder
    also reports itself unwritable to os.access, the way a read-only mount does for root."""
    for p in folder.iterdir():
        p.chmod(0o444) if p.is_file() else None
    folder.chmod(0o555)
    if os.geteuid() == 0:
        real = os.access

        def access(path, mode, *a, **k):
            if mode & os.W_OK and Path(path).absolute() == folder.absolute():
                return False
            return real(path, mode, *a, **k)

        monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize("leftover", ["none", "wal and shm", "wal only"])
def test_a_store_on_read_only_media_opens_read_only_and_a_write_open_names_the_read_only_folder(
    tmp_path, monkeypatch, leftover
):
    data = tmp_path / "data"
    store = open_store(data)
    with store.session() as s:
        s.add(m.Dataset(name="first"))
    media = tmp_path / "media"
    media.mkdir()
    for f in data.glob("store.sqlite*"):  # as a copy of a running app's folder would have them
        shutil.copyfile(f, media / f.name)
    store.close()
    if leftover == "none":
        shutil.copyfile(data / "store.sqlite", media / "store.sqlite")
    for name in {"none": ("-wal", "-shm"), "wal and shm": (), "wal only": ("-shm",)}[leftover]:
        (media / f"store.sqlite{name}").unlink()
    before = {p.name: p.read_bytes() for p in media.iterdir()}
    _read_only_folder(monkeypatch, media)
    try:
        with pytest.raises(StoreReadOnlyMedia) as e:
            open_store(media)
        msg = str(e.value)
        assert "cannot be written" in msg and ("EROFS" in msg or "EACCES" in msg) and "--read-only" in msg
        assert "corrupt" not in msg and "backup" not in msg and e.value.kind == "read_only_media"
        with open_store(media, read_only=True) as ro:
            assert [d["name"] for d in repo.datasets(ro)] == ["first"]
        assert {p.name: p.read_bytes() for p in media.iterdir()} == before  # nothing written there
    finally:
        media.chmod(0o755)


def _images(folder: Path, n: int) -> Path:
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (16, 16), (i * 6, 0, 0)).save(folder / f"im{i}.png")
    return folder


def _stray_files(store_dir: Path) -> list[Path]:
    """Image files no row refers to, and temporary files."""
    con = sqlite3.connect(store_dir / "store.sqlite")
    rows = {r[0] for r in con.execute("SELECT path FROM images")}
    con.close()
    return [
        p for p in (store_dir / "images").rglob("*") if p.is_file() and p.relative_to(store_dir).as_posix() not in rows
    ]


def _full_disk_after(monkeypatch, n_copies: int) -> None:
    """shutil.copyfile writes `n_copies` files, then fails half-way like a full disk."""
    real, calls = shutil.copyfile, []

    def copyfile(src, dst, *a, **k):
        calls.append(dst)
        if len(calls) > n_copies:
            Path(dst).write_bytes(b"\x89PNG half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(shutil, "copyfile", copyfile)


def test_a_full_disk_during_an_image_import_is_named_and_leaves_no_stray_files(tmp_path, monkeypatch, capsys):
    folder = _images(tmp_path / "photos", 40)
    data = tmp_path / "data"
    open_store(data).close()
    _full_disk_after(monkeypatch, 1)
    assert cli.main(["-q", "--store", str(data), "import", "images", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "is full" in err and str(data) in err and "MiB free" in err and "ENOSPC" in err
    assert "corrupt" not in err and "Traceback" not in err
    assert _stray_files(data) == []
    monkeypatch.undo()
    # the database itself full (SQLite's own "database or disk is full"): the same
    from sqlalchemy import event

    from mfv_desktop.store.exchange import import_images

    store = open_store(data)
    store.engine.dispose()
    event.listen(store.engine, "connect", lambda c, _r: c.execute("PRAGMA max_page_count=1"))  # no growth
    with pytest.raises(StoreDiskFull, match="is full"):
        run_to_end(import_images(store, [folder], "x"))
    store.close()
    assert _stray_files(data) == []


def test_a_full_disk_during_generate_fails_the_run_with_a_clear_message_and_no_stray_files(
    tmp_path, monkeypatch, capsys
):
    data = tmp_path / "data"
    open_store(data).close()
    _full_disk_after(monkeypatch, 1)
    assert cli.main(["-q", "--store", str(data), "generate", "--n", "3", "--canvas", "64"]) == 2
    err = capsys.readouterr().err
    assert "is full" in err and "Traceback" not in err
    monkeypatch.undo()
    with open_store(data) as store:
        with store.session() as s:
            (run,) = s.query(m.Run).all()
            assert run.status == "failed" and "is full" in run.error and "is full" in run.message
    assert _stray_files(data) == []


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "--n", "2", "--canvas", "64"],
        ["import", "images", "IMAGES"],
        ["aie", "--scenes", "dataset:first", "--relations", "above", "--model", "tiny"],
    ],
)
def test_a_write_through_a_read_only_store_says_so(tmp_path, capsys, command):
    data = tmp_path / "data"
    with open_store(data) as store:
        with store.session() as s:
            s.add(m.Dataset(name="first"))
    before = sorted(p.relative_to(data) for p in data.rglob("*") if "store.sqlite" not in p.name)
    images = str(_images(tmp_path / "photos", 2))
    rc = cli.main(["-q", "--store", str(data), "--read-only", *[images if a == "IMAGES" else a for a in command]])
    err = capsys.readouterr().err
    assert rc == 2 and "is open read-only" in err and "Traceback" not in err
    assert sorted(p.relative_to(data) for p in data.rglob("*") if "store.sqlite" not in p.name) == before


def _fail_once(monkeypatch, module, name: str) -> None:
    real = getattr(module, name)

    def failing(*a, **k):
        monkeypatch.setattr(module, name, real)
        raise RuntimeError("injected failure during ingest")

    monkeypatch.setattr(module, name, failing)


def test_resuming_after_a_failed_ingest_and_ingesting_again_add_no_duplicate_results(store, abs_scenes, monkeypatch):
    from mfv_desktop.jobs import AIESpec, EvaluateSpec, ExtractSpec, stored

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    spec = AIESpec(
        scenes="dataset:gen", relations=("above", "below"), k=1, n_prompts=4, split="a", batch_size=2, model="tiny"
    )
    _fail_once(monkeypatch, stored, "ingest")  # after the sink stored both AIE results
    with pytest.raises(RuntimeError, match="injected"):
        run_to_end(stored.run_in_store(store, spec))

    def results():
        with store.session() as s:
            return sorted((r.relation, r.aie_artifact, r.mean_artifact) for r in s.query(m.AIEResultRow))

    assert [r[0] for r in results()] == ["above", "below"]
    first = results()
    rid, _ = run_to_end(stored.resume(store, 1))
    assert results() == first
    stored.ingest(store, rid, store.runs_dir / str(rid), spec)
    assert results() == first
    rid2, _ = run_to_end(
        stored.run_in_store(
            store, ExtractSpec(aie=str(store.runs_dir / str(rid)), relation="above", top_k=2, model="tiny")
        )
    )
    with store.session() as s:
        vfile = store.artifacts.path(s.query(m.VectorRow).one().artifact)
    ev_spec = EvaluateSpec(
        scenes="dataset:gen",
        split="b",
        ks=(0, 1),
        vectors=(str(vfile),),
        n_prompts=2,
        relations=("above",),
        model="tiny",
    )
    rid3, _ = run_to_end(stored.run_in_store(store, ev_spec))

    def evaluations():
        with store.session() as s:
            return sorted(
                (e.relation, e.condition, e.split, e.n, e.accuracy)
                for e in s.query(m.EvaluationRow).filter_by(run_id=rid3)
            )

    rows = evaluations()
    assert len(rows) == 3 and len(set(rows)) == 3
    stored.ingest(store, rid3, store.runs_dir / str(rid3), ev_spec)
    assert evaluations() == rows
    assert np.isfinite([r[4] for r in rows]).all()
