"""The vector library dock, driven through its buttons (offscreen): list, rename and undo, delete
(never a part of a composite), export, and import checked against the current model in a job."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from mfv_desktop.store import models as m
from mfv_desktop.store import vectors as vrepo

pytestmark = pytest.mark.usefixtures("qapp")


def stock(window, bundled_vectors, relations=None):
    """The bundled model's vectors in the window's store, as another panel would leave them."""
    from mfv_desktop.jobs.stored import import_vector

    ids = {
        rel: import_vector(window.store, path)
        for rel, path in bundled_vectors["vectors"].items()
        if relations is None or rel in relations
    }
    window.vectorsChanged.emit()
    return ids


def table(lib) -> list[list[str]]:
    t = lib.table
    return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount()) if not t.isRowHidden(r)]


def select(qtbot, lib, vector_id, extend=False):
    row = next(i for i, v in enumerate(lib.rows) if v["id"] == vector_id)
    rect = lib.table.visualItemRect(lib.table.item(row, 1))
    mods = Qt.KeyboardModifier.ControlModifier if extend else Qt.KeyboardModifier.NoModifier
    qtbot.mouseClick(lib.table.viewport(), Qt.MouseButton.LeftButton, mods, rect.center())


def click(qtbot, lib, name):
    assert lib.buttons[name].isEnabled(), name
    qtbot.mouseClick(lib.buttons[name], Qt.MouseButton.LeftButton)


def add_composite(store, parts: dict[int, float], label="left of + above") -> int:
    with store.session() as s:
        first = s.get(m.VectorRow, next(iter(parts)))
        row = m.VectorRow(
            label=label,
            relation="composite",
            kind="composite",
            model_id=first.model_id,
            d_model=first.d_model,
            n_layers=first.n_layers,
            layer=first.layer,
            heads=[],
            hook_point=first.hook_point,
            artifact=first.artifact,
            provenance={"kind": "composite", "weighting": "given"},
            parents=[m.VectorParent(parent_id=p, weight=w) for p, w in parts.items()],
        )
        s.add(row)
        s.flush()
        return row.id


def test_lists_renames_with_undo_and_describes_the_vectors(qtbot, window, bundled_vectors):
    lib = window.vector_library
    assert window.docks["vectors"].widget() is lib and table(lib) == []
    ids = stock(window, bundled_vectors)
    rows = table(lib)
    assert len(rows) == 4 and lib.count.text() == "4 vectors"
    assert [int(r[0]) for r in rows] == sorted(ids.values(), reverse=True)  # newest first
    assert {r[2] for r in rows} == set(ids) and all(r[3] == "imported" for r in rows)
    assert {r[4] for r in rows} == {"mfv-bundled-openflamingo"}

    above = ids["above"]
    select(qtbot, lib, above)
    assert lib.selected_ids() == [above]
    text = lib.detail.toPlainText()
    n_heads = len(vrepo.get_vector(window.store, above)["heads"])
    assert f"{n_heads} heads (layer, head) and their average indirect effect" in text
    assert text.count("AIE ") == n_heads and "mfv-bundled-openflamingo" in text and "provenance (raw)" in text

    old = vrepo.get_vector(window.store, above)["label"]
    lib.ask_label = lambda current: "above (mine)"
    click(qtbot, lib, "rename")
    assert vrepo.get_vector(window.store, above)["label"] == "above (mine)"
    assert [r[1] for r in table(lib) if int(r[0]) == above] == ["above (mine)"]
    assert lib.selected_ids() == [above]  # the selection survives the reload
    window.undo.undo()
    assert vrepo.get_vector(window.store, above)["label"] == old
    assert [r[1] for r in table(lib) if int(r[0]) == above] == [old]
    window.undo.redo()
    assert vrepo.get_vector(window.store, above)["label"] == "above (mine)"
    lib.ask_label = lambda current: "   "  # an empty label is refused, nothing changes
    click(qtbot, lib, "rename")
    assert vrepo.get_vector(window.store, above)["label"] == "above (mine)" and "empty" in lib.message.text()

    lib.filter.setText("left")
    assert [r[2] for r in table(lib)] == ["left"] and lib.count.text() == "1 of 4 vectors"
    lib.filter.clear()
    with qtbot.waitSignal(lib.vectorActivated) as activated:
        row = next(i for i, v in enumerate(lib.rows) if v["id"] == ids["right"])
        pos = lib.table.visualItemRect(lib.table.item(row, 1)).center()
        qtbot.mouseClick(lib.table.viewport(), Qt.MouseButton.LeftButton, pos=pos)
        qtbot.mouseDClick(lib.table.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert activated.args == [ids["right"]]


def test_delete_never_takes_a_part_of_a_composite(qtbot, window, bundled_vectors):
    lib = window.vector_library
    ids = stock(window, bundled_vectors)
    comp = add_composite(window.store, {ids["left"]: 0.7, ids["above"]: 0.3})
    window.vectorsChanged.emit()
    assert len(table(lib)) == 5
    select(qtbot, lib, comp)
    left_label = vrepo.get_vector(window.store, ids["left"])["label"]
    assert f"vector {ids['left']} '{left_label}'  × 0.7000" in lib.detail.toPlainText()

    select(qtbot, lib, ids["left"])
    assert f"part of composite vector {comp}" in lib.detail.toPlainText()
    click(qtbot, lib, "delete")
    msg = lib.message.text()
    assert f"composite vector {comp} 'left of + above'" in msg and "nothing was deleted" in msg
    assert "left of + above" in window.statusBar().currentMessage()
    assert len(table(lib)) == 5 and vrepo.count_vectors(window.store) == 5

    window.confirm = lambda question: False  # the user says no: nothing goes
    select(qtbot, lib, ids["right"])
    click(qtbot, lib, "delete")
    assert vrepo.count_vectors(window.store) == 5
    questions = []
    window.confirm = lambda question: questions.append(question) or True
    click(qtbot, lib, "delete")
    assert f"{ids['right']} 'right" in questions[0] and vrepo.count_vectors(window.store) == 4
    assert ids["right"] not in [int(r[0]) for r in table(lib)]

    # a composite with its parts, selected together, goes (the composite first)
    select(qtbot, lib, comp)
    select(qtbot, lib, ids["left"], extend=True)
    assert sorted(lib.selected_ids()) == sorted([comp, ids["left"]])
    click(qtbot, lib, "delete")
    assert sorted(int(r[0]) for r in table(lib)) == sorted([ids["above"], ids["below"]])
    with window.store.session() as s:
        assert s.query(m.VectorParent).count() == 0


def test_export_writes_a_vector_file_that_loads(qtbot, window, bundled_vectors, tmp_path):
    from mfv_desktop.fv.vector_file import FunctionVector

    lib = window.vector_library
    ids = stock(window, bundled_vectors, relations={"below"})
    select(qtbot, lib, ids["below"])
    lib.ask_folder = lambda: str(tmp_path / "out")
    click(qtbot, lib, "export")
    files = list((tmp_path / "out").glob("*.safetensors"))
    assert len(files) == 1 and files[0].with_suffix(".json").is_file()
    fv = FunctionVector.load(files[0])
    assert fv.relation == "below" and fv.model_id == "mfv-bundled-openflamingo"
    assert files[0].name in lib.message.text()


def wait_job(qtbot, job, timeout=60000):
    qtbot.waitUntil(lambda: job.status in ("done", "failed", "cancelled"), timeout=timeout)
    return job


def test_import_checks_the_vector_against_the_current_model(qtbot, window, bundled_vectors, tmp_path):
    import torch

    from mfv_desktop.fv.vector_file import FunctionVector

    lib = window.vector_library
    stock(window, bundled_vectors, relations={"above", "below", "left"})
    assert vrepo.count_vectors(window.store) == 3
    assert window.model == "bundled"

    # a good vector of the current model, through the button and the file dialog
    lib.ask_file = lambda: bundled_vectors["vectors"]["right"]
    click(qtbot, lib, "import")
    job = wait_job(qtbot, window.jobs.jobs[-1])
    assert job.status == "done", job.error
    assert vrepo.count_vectors(window.store) == 4 and len(table(lib)) == 4
    assert lib.selected_ids() == [job.result] and lib.vector(job.result)["relation"] == "right"
    assert "right.safetensors" in lib.message.text()

    # a vector made for another model: refused by name, nothing stored changes
    other = tmp_path / "other-model.safetensors"
    FunctionVector(
        vector=torch.ones(7),
        label="x",
        relation="above",
        model_id="elsewhere",
        d_model=7,
        n_layers=2,
        layer=0,
        heads=[],
        provenance={},
    ).save(other)
    job = wait_job(qtbot, lib.import_file(other))
    assert job.status == "failed"
    msg = lib.message.text()
    assert "other-model.safetensors" in msg and "elsewhere" in msg and "d_model=7" in msg, msg
    assert "other-model.safetensors" in window.statusBar().currentMessage()
    assert vrepo.count_vectors(window.store) == 4 and len(table(lib)) == 4

    # a file that is not a function vector at all
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"junk")
    job = wait_job(qtbot, lib.import_file(junk))
    assert job.status == "failed"
    assert "junk.safetensors is not a function vector file" in lib.message.text()
    assert vrepo.count_vectors(window.store) == 4

    # the same file again: no second row
    job = wait_job(qtbot, lib.import_file(bundled_vectors["vectors"]["right"]))
    assert job.status == "done" and "already in the store" in lib.message.text()
    assert vrepo.count_vectors(window.store) == 4


def test_store_functions_without_the_window(store, bundled_vectors):
    from mfv_desktop.jobs.stored import import_vector
    from mfv_desktop.store import StoreError

    a = import_vector(store, bundled_vectors["vectors"]["above"])
    b = import_vector(store, bundled_vectors["vectors"]["below"])
    comp = add_composite(store, {a: 0.5, b: 0.5})
    assert [v["id"] for v in vrepo.list_vectors(store)] == [comp, b, a]
    assert vrepo.list_vectors(store, model_id="elsewhere") == []
    parents = vrepo.get_vector(store, comp)["parents"]
    assert [(p["id"], p["weight"]) for p in parents] == [(a, 0.5), (b, 0.5)]
    assert parents[0]["label"] == vrepo.get_vector(store, a)["label"]
    with pytest.raises(StoreError, match=f"composite vector {comp} 'left of \\+ above'"):
        vrepo.delete_vector(store, a)
    with pytest.raises(StoreError, match="empty"):
        vrepo.rename_vector(store, a, " ")
    with pytest.raises(StoreError, match="no vector 999"):
        vrepo.delete_vectors(store, [comp, 999])
    assert vrepo.count_vectors(store) == 3  # all or none
    vrepo.delete_vector(store, comp)
    vrepo.delete_vector(store, a)
    assert [v["id"] for v in vrepo.list_vectors(store)] == [b]


def test_the_store_side_needs_neither_torch_nor_qt():
    import subprocess
    import sys

    code = (
        "import sys, mfv_desktop.store.vectors, mfv_desktop.jobs.stored; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'PySide6', 'huggingface_hub'}))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr
