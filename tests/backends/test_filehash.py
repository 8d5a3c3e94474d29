"""Provenance identifies the model: the sha256 of every weight file, streamed and cached by path, size and
modification time (backends/filehash.py), so that two runs on different checkpoints are never taken for one."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from mfv_desktop.backends import filehash


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MFV_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / filehash.CACHE_FILE


@pytest.fixture
def opened(monkeypatch):
    """The files filehash opens to read their bytes."""
    seen = []

    def counting_open(path, *a, **kw):
        seen.append(os.fspath(path))
        return open(path, *a, **kw)

    monkeypatch.setattr(filehash, "open", counting_open, raising=False)
    return seen


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def test_two_folders_differing_in_one_byte_of_a_weight_file_have_different_provenance(tiny_folder, tmp_path, cache):
    from mfv_desktop.backends.openflamingo import OpenFlamingoBackend

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(tiny_folder, a)
    shutil.copytree(tiny_folder, b)
    weights = b / "lm" / "model.safetensors"
    size = weights.stat().st_size
    _flip_last_byte(weights)  # the language model's weights: recorded by nothing before
    assert weights.stat().st_size == size
    pa, pb = OpenFlamingoBackend.from_folder(a).provenance(), OpenFlamingoBackend.from_folder(b).provenance()
    assert pa["model_id"] == pb["model_id"]
    differ = {k for k in pa["files"] if pa["files"][k] != pb["files"].get(k)}
    assert differ == {"lm/model.safetensors"}
    assert pb["files"]["lm/model.safetensors"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    # every weight file is hashed, the checkpoint and the language model's alike
    assert {"checkpoint.safetensors", "lm/model.safetensors", "lm/config.json", "mfv_model.json"} <= set(pa["files"])
    assert all(len(v) == 64 for v in pa["files"].values())


def test_a_second_call_reads_no_file_and_touching_a_file_hashes_it_again(tmp_path, cache, opened):
    folder = tmp_path / "model"
    folder.mkdir()
    big = folder / "model-00001.safetensors"
    big.write_bytes(os.urandom(3 * filehash.CHUNK // 2))  # more than one chunk
    small = folder / "config.json"
    small.write_text("{}")
    first = filehash.fingerprint(folder, [big, small])
    assert first == {
        "config.json": hashlib.sha256(b"{}").hexdigest(),
        "model-00001.safetensors": hashlib.sha256(big.read_bytes()).hexdigest(),
    }
    assert sorted(opened) == sorted([str(big), str(small)]) and cache.is_file()
    opened.clear()
    assert filehash.fingerprint(folder, [big, small]) == first
    assert opened == []  # a cache hit: no byte of either file read
    st = big.stat()
    os.utime(big, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # touched: the same bytes, a new mtime
    assert filehash.fingerprint(folder, [big, small]) == first
    assert opened == [str(big)]


def test_a_changed_file_of_the_same_size_gets_its_new_hash(tmp_path, cache):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"\x00" * 1000)
    before = filehash.sha256_files([path])[path]
    _flip_last_byte(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # a coarse clock could miss the write
    assert filehash.sha256_files([path])[path] != before


def test_a_damaged_cache_is_ignored(tmp_path, cache):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"abc")
    cache.parent.mkdir(parents=True)
    cache.write_text("{not json")
    assert filehash.sha256_files([path])[path] == hashlib.sha256(b"abc").hexdigest()
    assert str(path.resolve()) in cache.read_text()


def test_hashing_needs_no_torch():
    import subprocess
    import sys

    code = "import sys, mfv_desktop.backends.filehash; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
