"""Hypothesis drives vector import with hostile metadata and shapes (issue 15): the outcome is a named
error (naming the file) or a stored, usable record; never another exception, never a file outside
the data folder, never a parent read from a path the file names, never an artifact left behind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file
from sqlalchemy import select

from mfv_desktop.fv.vector_file import FORMAT
from mfv_desktop.store import models as m

GOOD = {
    "label": "above top3",
    "relation": "above",
    "model_id": "m",
    "d_model": 4,
    "n_layers": 3,
    "layer": 1,
    "heads": [[0, 1]],
    "bias": "per_head",
    "strength": 1.0,
    "hook_point": "residual:decoder_layer_output:last_token",
    "provenance": {"kind": "composite"},
}
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers(-5, 12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.just("x" * 300_000),
    st.lists(st.lists(st.integers(-3, 40), max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
RAW = st.sampled_from(
    [
        "{",
        "[]",
        "null",
        "[" * 5000 + "]" * 5000,
        '{"label": NaN}',
        json.dumps(dict(GOOD, label="\ud800")),
        json.dumps(dict(GOOD, relation="a\u202eb")),
    ]
)


@st.composite
def parents(draw, files: dict[str, Path]) -> list:
    """Parts that name a file outside the data folder, the file itself, one that does not exist, or junk."""
    out = []
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(sorted(files)))
        part = {
            "sha256": draw(st.sampled_from([files["outside"].stem, "0" * 64, "X" * 64, ""])),
            "weight": draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(0.5))),
            "file": str(files[where]),
        }
        if draw(st.booleans()):
            part.pop(draw(st.sampled_from(sorted(part))))
        out.append(part if draw(st.integers(0, 5)) else draw(JUNK))
    return out


@st.composite
def vector_files(draw, files: dict[str, Path]) -> tuple[dict[str, np.ndarray], str]:
    meta = dict(GOOD, provenance=dict(GOOD["provenance"], parents=draw(parents(files))))
    for key in draw(st.lists(st.sampled_from(sorted(GOOD)), unique=True, max_size=3)):
        if draw(st.booleans()):
            meta.pop(key)
        else:
            meta[key] = draw(JUNK)
    raw = draw(RAW) if draw(st.integers(0, 9)) == 0 else json.dumps(meta)
    shape = draw(st.sampled_from([(4,), (4,), (3,), (2, 2), (), (0,)]))
    dtype = draw(st.sampled_from([np.float32, np.float32, np.float16, np.float64, np.int64, np.int8]))
    fill = draw(st.sampled_from([1.0, 0.25, np.nan, np.inf, 1e300]))
    with np.errstate(all="ignore"):
        array = np.full(shape, fill).astype(dtype)
    name = draw(st.sampled_from(["vector", "vector", "other"]))
    return {name: array}, raw


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A valid vector outside the data folder (named by its sha256), and paths a file may name."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (tmp_path / "in").mkdir()
    tmp = folder / "part.tmp"
    save_file(
        {"vector": np.ones(4, np.float32)},
        str(tmp),
        metadata={"format": FORMAT, "meta": json.dumps(dict(GOOD, label="outside"))},
    )
    part = tmp.rename(folder / f"{hashlib.sha256(tmp.read_bytes()).hexdigest()}.safetensors")
    return {
        "outside": part,
        "missing": folder / "missing.safetensors",
        "absolute": Path("/etc/passwd"),
        "self": tmp_path / "in" / "self.safetensors",
        "data": tmp_path / "data" / "x.safetensors",
    }


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_a_hostile_vector_file_is_refused_by_name_or_stored_usable(store, tmp_path, files, data):
    from mfv_desktop.backends import BackendError
    from mfv_desktop.fv.vector_file import FunctionVector
    from mfv_desktop.jobs.stored import import_vector
    from mfv_desktop.store.errors import StoreError
    from mfv_desktop.store.vectors import list_vectors

    arrays, raw = data.draw(vector_files(files))
    name = f"v{len(list((tmp_path / 'in').iterdir()))}.safetensors"
    path = tmp_path / "in" / (name if data.draw(st.booleans()) else "self.safetensors")
    save_file(arrays, str(path), metadata={"format": FORMAT, "meta": raw})
    outside_before = _files(tmp_path) - _files(store.data_dir)
    try:
        vid = import_vector(store, path)
    except (StoreError, BackendError) as e:
        assert path.name in str(e), str(e)
        vid = None
    event("refused" if vid is None else "stored")
    with store.session() as s:
        rows = {r.id: r.artifact for r in s.scalars(select(m.VectorRow))}
    if vid is not None:  # stored: loadable from the store, listed, its parts found by content only
        assert vid in rows and vid in [v["id"] for v in list_vectors(store)]
        FunctionVector.load(store.artifacts.path(rows[vid]))
    assert files["outside"].stem not in rows.values()  # the file outside was never read into the store
    assert {p.stem for p in store.artifacts.root.rglob("*.safetensors")} == set(rows.values())  # nothing left
    assert _files(tmp_path) - _files(store.data_dir) == outside_before  # nothing written outside the data folder
