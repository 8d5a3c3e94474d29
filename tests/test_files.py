"""One way to write a file whole or not at all (mfv_desktop.files), used by every writer that renames into place."""

from __future__ import annotations

import pytest

from mfv_desktop.files import atomic_path, atomic_write


def test_atomic_write_writes_text_and_bytes_and_leaves_no_temporary_file(tmp_path):
    assert atomic_write(tmp_path / "sub" / "a.json", "ä{}").read_text(encoding="utf-8") == "ä{}"
    atomic_write(tmp_path / "b.bin", b"\x00\x01", fsync=True)
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    atomic_write(tmp_path / "b.bin", b"new")
    assert (tmp_path / "b.bin").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.json", "b.bin"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    path = tmp_path / "scenes.jsonl"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["scenes.jsonl"]


def test_the_temporary_name_keeps_the_suffix(tmp_path):
    """np.savez appends .npz and Qt picks the image format by suffix: the temporary file keeps it."""
    with atomic_path(tmp_path / "pool.npz") as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path and tmp.name.startswith(".")
        tmp.write_bytes(b"x")
    assert (tmp_path / "pool.npz").read_bytes() == b"x"
