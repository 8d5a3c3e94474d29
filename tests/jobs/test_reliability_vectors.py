"""Hostile vector files and bad job arguments (issue 15, defects 9 and 10): refused with a message that
names the file or the field, before anything is stored; nothing left behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file
from sqlalchemy import func, select

from mfv_desktop.cli import main
from mfv_desktop.fv.vector_file import FORMAT
from mfv_desktop.progress import run_to_end
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
    "provenance": {},
}


def write_vector(path: Path, meta: dict | None = None, arrays: dict | None = None, raw: str | None = None) -> Path:
    arrays = {"vector": np.ones(4, np.float32)} if arrays is None else arrays
    meta_text = raw if raw is not None else json.dumps(meta or GOOD)
    save_file(arrays, str(path), metadata={"format": FORMAT, "meta": meta_text})
    return path


def with_(**kw) -> dict:
    return {k: v for k, v in {**GOOD, **kw}.items() if v is not KeyError}


def counts(store) -> tuple[int, int]:
    """(vector rows, artifact files) in the store."""
    with store.session() as s:
        rows = s.scalar(select(func.count()).select_from(m.VectorRow))
    return rows, len(list(store.artifacts.root.rglob("*.safetensors")))


HOSTILE = {
    "wrong shape": (dict(arrays={"vector": np.ones(3, np.float32)}), "shape (3,)"),
    "a matrix": (dict(arrays={"vector": np.ones((2, 2), np.float32)}), "shape (2, 2)"),
    "no vector tensor": (dict(arrays={"weights": np.ones(4, np.float32)}), "'vector'"),
    "NaN values": (dict(arrays={"vector": np.full(4, np.nan, np.float32)}), "NaN"),
    "infinite values": (dict(arrays={"vector": np.array([1, np.inf, 0, 0], np.float32)}), "infinite"),
    "int64 data": (dict(arrays={"vector": np.ones(4, np.int64)}), "I64"),
    "layer 99": (dict(meta=with_(layer=99)), "'layer'"),
    "layer -3": (dict(meta=with_(layer=-3)), "'layer'"),
    "head's layer out of range": (dict(meta=with_(heads=[[7, 0]])), "'heads'"),
    "negative head": (dict(meta=with_(heads=[[0, -1]])), "'heads'"),
    "5 MB label": (dict(meta=with_(label="x" * 5_000_000)), "metadata"),
    "a 1001-character label": (dict(meta=with_(label="x" * 1001)), "'label'"),
    "a label with a newline": (dict(meta=with_(label="a\nb")), "'label'"),
    "a relation that is a path": (dict(meta=with_(relation="../x")), "'relation'"),
    "missing strength": (dict(meta=with_(strength=KeyError)), "'strength'"),
    "missing label": (dict(meta=with_(label=KeyError)), "'label'"),
    "layer as text": (dict(meta=with_(layer="1")), "'layer'"),
    "heads as text": (dict(meta=with_(heads="0:1")), "'heads'"),
    "NaN strength": (dict(raw=json.dumps(with_(strength=float("nan")))), "NaN"),
    "huge strength": (
        dict(raw=json.dumps(with_(strength=1)).replace('"strength": 1', '"strength": 1e999')),
        "'strength'",
    ),
    "metadata not JSON": (dict(raw="{"), "not JSON"),
    "metadata a list": (dict(raw="[]"), "JSON object"),
    "a parent without a hash": (
        dict(meta=with_(provenance={"parents": [{"file": "/etc/passwd", "weight": 1}]})),
        "sha256",
    ),
}


@pytest.mark.parametrize("attack", list(HOSTILE))
def test_a_vector_file_that_cannot_work_is_refused_whole(store, tmp_path, attack, capsys):
    from mfv_desktop.backends import BackendError
    from mfv_desktop.fv.vector_file import FunctionVector
    from mfv_desktop.jobs.stored import import_vector
    from mfv_desktop.store.errors import StoreError

    kw, field = HOSTILE[attack]
    path = write_vector(tmp_path / "hostile.safetensors", **kw)
    with pytest.raises(StoreError) as e:
        import_vector(store, path)
    assert "hostile.safetensors" in str(e.value) and field in str(e.value), str(e.value)
    assert counts(store) == (0, 0)  # no row, and no artifact file left behind
    with pytest.raises(BackendError, match="hostile.safetensors"):
        FunctionVector.load(path)
    # and on the command line: one line that names it, exit 2
    capsys.readouterr()
    assert main(["-q", "--store", str(tmp_path / "cli"), "import", "vector", str(path)]) == 2
    err = capsys.readouterr().err
    assert "hostile.safetensors" in err and len(err.strip().splitlines()) == 1, err


def test_import_never_follows_paths_named_in_the_file(store, tmp_path):
    """A composite lists its parts by content; files it names (anywhere, or itself) are not read."""
    from mfv_desktop.jobs.stored import import_vector
    from mfv_desktop.store.vectors import get_vector

    outside = write_vector(tmp_path / "outside.safetensors", with_(label="outside"))
    sha = __import__("hashlib").sha256(outside.read_bytes()).hexdigest()
    comp = tmp_path / "comp.safetensors"
    parents = [
        {"sha256": sha, "weight": 0.5, "file": str(outside)},
        {"sha256": "0" * 64, "weight": 0.5, "file": str(comp)},
    ]  # itself, by path
    write_vector(
        comp,
        with_(label="comp", provenance={"kind": "composite", "parents": parents}),
        arrays={"vector": np.full(4, 2, np.float32)},
    )
    cid = import_vector(store, comp)
    assert counts(store) == (1, 1)  # the outside file was not followed
    assert get_vector(store, cid)["parents"] == []
    # once the part is in the store, a composite naming it by content is linked to it
    pid = import_vector(store, outside)
    comp2 = write_vector(
        tmp_path / "comp2.safetensors",
        with_(
            label="comp2",
            provenance={
                "kind": "composite",
                "parents": [{"sha256": sha, "weight": 1.0, "file": "/nonexistent/x.safetensors"}],
            },
        ),
        arrays={"vector": np.full(4, 3, np.float32)},
    )
    assert get_vector(store, import_vector(store, comp2))["parents"] == [{"id": pid, "label": "outside", "weight": 1.0}]


def test_two_files_that_name_each_other_as_parts_do_not_recurse(store, tmp_path):
    from mfv_desktop.jobs.stored import import_vector

    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    for me, other, fill in ((a, b, 1), (b, a, 2)):
        write_vector(
            me,
            with_(
                provenance={"kind": "composite", "parents": [{"sha256": "1" * 64, "weight": 1.0, "file": str(other)}]}
            ),
            arrays={"vector": np.full(4, fill, np.float32)},
        )
    import_vector(store, a)
    assert counts(store) == (1, 1)


@pytest.fixture(scope="module")
def tiny_vector(tiny_folder, scene_folder, tmp_path_factory):
    """An AIE folder and an extracted 'above' vector for the tiny model."""
    from mfv_desktop.jobs import AIESpec, ExtractSpec, execute, run_aie, run_extract

    out = tmp_path_factory.mktemp("vec")
    run_to_end(
        execute(
            AIESpec(
                scenes=str(scene_folder),
                out=str(out / "aie"),
                relations=("above",),
                k=1,
                n_prompts=2,
                split="a",
                model=str(tiny_folder),
            ),
            run_aie,
            out / "aie",
        )
    )
    vec = out / "above.safetensors"
    run_to_end(
        execute(
            ExtractSpec(aie=str(out / "aie"), relation="above", out=str(vec), top_k=2, layer=1, model=str(tiny_folder)),
            run_extract,
            out,
        )
    )
    return {"aie": out / "aie", "vector": vec}


def test_importing_with_a_model_checks_the_heads_against_it(tmp_path, tiny, tiny_folder, capsys):
    g = tiny.geometry
    path = write_vector(
        tmp_path / "heads.safetensors",
        with_(model_id=tiny.model_id, d_model=g.d_model, n_layers=g.n_layers, heads=[[0, g.n_heads + 5]]),
        arrays={"vector": np.ones(g.d_model, np.float32)},
    )
    data = tmp_path / "data"
    rc = main(["-q", "--store", str(data), "import", "vector", str(path), "--model", str(tiny_folder)])
    err = capsys.readouterr().err
    assert rc == 2 and "heads.safetensors" in err and f"[(0, {g.n_heads + 5})]" in err, err
    assert main(["-q", "--store", str(data), "vectors"]) == 0 and capsys.readouterr().out == ""


def test_apply_never_reports_probabilities_that_are_not_numbers(tmp_path, tiny_folder, tiny_vector, abs_scenes, capsys):
    scene = abs_scenes[0]
    base = [
        "-q",
        "apply",
        "--out",
        str(tmp_path / "o"),
        "--vectors",
        str(tiny_vector["vector"]),
        "--image",
        scene.image,
        "--anchor",
        scene.anchor,
        "--model",
        str(tiny_folder),
    ]
    for strength, says in (("inf", "finite number"), ("nan", "finite number"), ("1e38", "not finite numbers")):
        capsys.readouterr()
        assert main([*base, "--strength", strength]) == 2, strength
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o" / "apply.json").exists()


def _runs(data: Path) -> list[tuple[str, str]]:
    from mfv_desktop.store import open_store

    store = open_store(data, read_only=True)
    try:
        with store.session() as s:
            return [(r.status, r.error or "") for r in s.scalars(select(m.Run).order_by(m.Run.id))]
    finally:
        store.close()


def test_bad_arguments_are_refused_before_a_run_exists(tmp_path, tiny_folder, scene_folder, tiny_vector, capsys):
    data = str(tmp_path / "data")
    store = ["-q", "--store", data]
    model = ["--model", str(tiny_folder)]
    cases = [
        (
            [
                "finetune",
                "--vector",
                str(tiny_vector["vector"]),
                "--scenes",
                str(scene_folder),
                "--train-batch-size",
                "0",
            ],
            "train_batch_size (--train-batch-size) is 0",
        ),
        (
            ["extract", "--aie", str(tiny_vector["aie"]), "--relation", "above", "--strength", "nan"],
            "strength (--strength) is nan",
        ),
        (["aie", "--scenes", str(scene_folder), "--relations", ""], "relations (--relations) is empty"),
        (
            ["sweep", "--vector", str(tiny_vector["vector"]), "--scenes", str(scene_folder), "--strengths", "nan"],
            "strengths (--strengths) is nan",
        ),
        (["evaluate", "--scenes", str(scene_folder), "--n-prompts", "0"], "n_prompts (--n-prompts) is 0"),
    ]
    for args, says in cases:
        capsys.readouterr()
        assert main([*store, *args, *model]) == 2, args
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err
    assert _runs(Path(data)) == []  # no run was created for any of them


def test_a_layer_the_model_lacks_fails_the_run_before_work(tmp_path, tiny_folder, scene_folder, tiny_vector, capsys):
    data = tmp_path / "data"
    store = ["-q", "--store", str(data)]
    model = ["--model", str(tiny_folder)]
    capsys.readouterr()
    assert (
        main(
            [
                *store,
                "sweep",
                "--vector",
                str(tiny_vector["vector"]),
                "--scenes",
                str(scene_folder),
                "--layers",
                "1,99",
                *model,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "layer 99 is not a layer of" in err and "layers 0-3" in err, err
    assert (
        main([*store, "extract", "--aie", str(tiny_vector["aie"]), "--relation", "above", "--layer", "99", *model]) == 2
    )
    assert (
        main([*store, "extract", "--aie", str(tiny_vector["aie"]), "--relation", "above", "--heads", "0:99", *model])
        == 2
    )
    runs = _runs(data)
    assert [s for s, _ in runs] == ["failed"] * 3 and all("SpecError" in e for _, e in runs), runs
    assert main([*store, "vectors"]) == 0
    assert capsys.readouterr().out == ""  # no vector was stored


def test_exporting_the_evaluations_of_a_run_that_does_not_exist_names_it(tmp_path, capsys):
    out = tmp_path / "e.csv"
    assert main(["-q", "--store", str(tmp_path / "data"), "export", "evaluations", str(out), "--run", "999"]) == 2
    assert "run 999" in capsys.readouterr().err and not out.exists()
