"""Right or wrong, in Apply and Analogy (issue 18), driven with real clicks (offscreen) on the
bundled model: where the scene's confirmed labels say what the answer is, each condition's answer
is marked right or wrong against it; an answer that names no object of the image is warned about;
a scene without labels (or without one for the relation from the anchor) and an opened image say
that no expected answer is known."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from mfv_desktop.progress import run_to_end
from mfv_desktop.store import scenes as repo
from tests.ui.test_analogy import in_relation
from tests.ui.test_apply import STRENGTH, click_object, click_vector, open_tab, target_of

pytestmark = pytest.mark.usefixtures("qapp")


def fixed_by_above(window, scenes, bundled_vectors) -> tuple[int, str, str, str]:
    """A scene whose 0-shot answer is not the object above the anchor and which the 'above' vector
    fixes: (scene id, anchor, the object above it, the 0-shot answer)."""
    from mfv_desktop.jobs import ApplySpec, execute, run_apply

    for _name, sid in sorted(scenes.items()):
        anchor, above = target_of(window.store, sid, "above")
        image = repo.get_scene(window.store, sid)[0].image
        spec = ApplySpec(
            image=image,
            anchor=anchor,
            vectors=(bundled_vectors["vectors"]["above"],),
            strength=STRENGTH,
            model=window.model_ref(),
        )
        ref = run_to_end(execute(spec, run_apply, window.store.data_dir / "check"))
        if ref["without"] != above and ref["with"] == above:
            return sid, anchor, above, ref["without"]
    raise AssertionError("the bundled 'above' vector fixes no 0-shot answer")


def clicked(qtbot, panel, button) -> list[str]:
    """Click Apply or Solve, wait for the answer; the verdict lines the user sees."""
    before = panel.run_id
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.run_id != before and panel.result is not None, timeout=60000)
    assert panel.verdicts.isVisible()
    return panel.verdicts.lines()


def apply_clicked(qtbot, panel) -> list[str]:
    return clicked(qtbot, panel, panel.apply_button)


def test_apply_marks_each_answer_right_or_wrong_by_the_labels(qtbot, window, stocked, bundled_vectors, tmp_path):
    vec, scenes = stocked
    sid, anchor, above, zero_shot = fixed_by_above(window, scenes, bundled_vectors)
    window.library.select_scene(sid)
    window.show_scene(sid)
    panel = open_tab(qtbot, window, "Apply")
    click_object(qtbot, panel.pane.view, anchor)
    click_vector(qtbot, panel.vectors, vec["above"])
    qtbot.mouseClick(panel.own_strength, Qt.MouseButton.LeftButton)
    panel.strength.setValue(STRENGTH)

    # the labels say what is above the anchor: 0-shot is wrong, the vector's answer right
    lines = apply_clicked(qtbot, panel)
    assert lines == [
        f"0-shot: '{zero_shot}' ✗ wrong (expected: {above})",
        f"with vectors: '{above}' ✓ right (expected: {above})",
    ]
    assert panel.result["with"] == above and "✓ right" in panel.verdicts.text() and "✗ wrong" in panel.verdicts.text()

    # the verdicts belong to their image and anchor: another anchor hides them, the same one shows them again
    other = next(n for n in panel.pane.view.object_names() if n != anchor)
    click_object(qtbot, panel.pane.view, other)
    assert not panel.verdicts.isVisible()
    click_object(qtbot, panel.pane.view, anchor)
    assert panel.verdicts.isVisible()

    # the label of the object above rejected: labels, but none for 'above' from the anchor
    data, labels = repo.get_scene(window.store, sid)
    label = next(lb for lb in labels if (lb.subject, lb.relation, lb.object) == (above, "above", anchor))
    repo.set_label_status(window.store, label.id, "rejected")
    lines = apply_clicked(qtbot, panel)
    assert lines[:2] == [f"0-shot: '{zero_shot}'", f"with vectors: '{above}'"]
    assert lines[2] == f"no expected answer is known: this scene has no confirmed labels for above from {anchor}"
    assert "✓" not in panel.verdicts.text() and "✗" not in panel.verdicts.text()
    repo.set_label_status(window.store, label.id, "confirmed")

    # the object above renamed: the model still answers what it sees, a word naming no object here
    obj = next(o for o in repo.objects(window.store, sid) if o.name == above)
    repo.rename_object(window.store, obj.id, "thing")
    panel.pane.show_scene(sid)  # shown again, by its id
    assert "thing" in panel.pane.view.object_names() and panel.anchor.name() == anchor
    lines = apply_clicked(qtbot, panel)
    assert lines[1] == (f"with vectors: '{above}' ✗ wrong (expected: thing) ⚠ '{above}' names no object in this image")
    assert f"'{above}' names no object in this image" in panel.verdicts.text()

    # the same image as a scene with objects but no labels at all
    bare = repo.create_scene(
        window.store,
        "bare",
        data.image,
        "no labels",
        objects=[o for o in data.objects if o.name != above],
        anchor=anchor,
    )
    panel.pane.show_scene(bare)
    assert panel.pane.scene_id == bare and panel.pane.view.path == panel.result["image"]  # the same image file
    click_object(qtbot, panel.pane.view, anchor)
    assert not panel.verdicts.isVisible()  # the verdicts were for the labelled scene
    lines = apply_clicked(qtbot, panel)
    assert lines[-1] == "no expected answer is known: this scene has no confirmed labels at all"
    assert lines[1] == f"with vectors: '{above}' ⚠ '{above}' names no object in this image"

    # an opened image: no labels, and no boxes to tell which words name its objects
    photo = tmp_path / "photo.png"
    Image.open(data.image).save(photo)
    panel.pane.ask_image_path = lambda: str(photo)
    qtbot.mouseClick(panel.pane.open_button, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(panel.anchor, anchor)
    lines = apply_clicked(qtbot, panel)
    assert lines == [
        f"0-shot: '{zero_shot}'",
        f"with vectors: '{above}'",
        "no expected answer is known: an opened image has no labels (show a scene of the store to check answers)",
    ]


def test_apply_verdicts_are_readable_in_the_dark_theme(qtbot, window, stocked, bundled_vectors):
    from mfv_desktop.ui.shell.settings import apply_theme
    from mfv_desktop.ui.text_colours import RIGHT, WRONG, is_dark

    vec, scenes = stocked
    sid, anchor, above, _ = fixed_by_above(window, scenes, bundled_vectors)
    window.library.select_scene(sid)
    window.show_scene(sid)
    panel = open_tab(qtbot, window, "Apply")
    click_object(qtbot, panel.pane.view, anchor)
    click_vector(qtbot, panel.vectors, vec["above"])
    qtbot.mouseClick(panel.own_strength, Qt.MouseButton.LeftButton)
    panel.strength.setValue(STRENGTH)
    apply_clicked(qtbot, panel)
    assert RIGHT[0] in panel.verdicts.text() and WRONG[0] in panel.verdicts.text()
    try:
        apply_theme("dark")
        qtbot.waitUntil(lambda: is_dark(panel.verdicts.palette()))
        assert RIGHT[1] in panel.verdicts.text() and WRONG[1] in panel.verdicts.text()
    finally:
        apply_theme("light")
    qtbot.waitUntil(lambda: RIGHT[0] in panel.verdicts.text() and WRONG[0] in panel.verdicts.text())


def test_analogy_marks_d_and_each_condition_by_the_target_labels(qtbot, window, stocked):
    vec, scenes = stocked
    scene_ids = list(scenes.values())
    source_id = scene_ids[1]
    a, b = in_relation(window.store, source_id, "above")
    window.library.select_scene(source_id)
    window.show_scene(source_id)
    panel = open_tab(qtbot, window, "Analogy")
    src, tgt = panel.source.view, panel.target.view
    click_object(qtbot, src, a)
    click_object(qtbot, src, b)

    seen: set[bool] = set()
    for target_id in scene_ids[6:12]:  # until both a right and a wrong answer were shown
        panel.target.scene_spin.setValue(target_id)
        c, d = in_relation(window.store, target_id, "above")
        click_object(qtbot, tgt, c)
        lines = clicked(qtbot, panel, panel.solve_button)
        assert len(lines) == 3
        for line, (cond, answer) in zip(lines, panel.shown_answers().items()):
            right = answer == d
            seen.add(right)
            mark = "✓ right" if right else "✗ wrong"
            stray = "" if answer in tgt.object_names() else f" ⚠ '{answer}' names no object in this image"
            assert line == f"{cond}: '{answer}' {mark} (expected: {d}){stray}"
        d_shown = panel.shown_answers()["composite FV"]
        assert panel.d_label.text().endswith(" ✓" if d_shown == d else f" ✗ ({d})")
        if seen == {True, False}:
            break
    assert seen == {True, False}, "no target gave both a right and a wrong answer"

    # another C: the verdicts were for the C solved, so they are hidden
    click_object(qtbot, tgt, next(n for n in tgt.object_names() if n != c))
    assert not panel.verdicts.isVisible()
    click_object(qtbot, tgt, c)
    assert panel.verdicts.isVisible()

    # a target scene without labels: no expected D is known
    data, _ = repo.get_scene(window.store, target_id)
    bare = repo.create_scene(window.store, "bare", data.image, "no labels", objects=data.objects, anchor=c)
    panel.target.scene_spin.setValue(bare)
    assert panel.target.scene_id == bare and panel.target.image_path == panel.solved[3]  # the same image file
    click_object(qtbot, tgt, c)
    assert not panel.verdicts.isVisible()  # the verdicts were for the labelled scene
    assert (
        clicked(qtbot, panel, panel.solve_button)[-1]
        == "no expected answer is known: this scene has no confirmed labels at all"
    )
    assert "✓" not in panel.verdicts.text() and "✗" not in panel.verdicts.text()

    # a source pair the labels do not relate (B is not labelled in a relation to A): the relation is unknown
    e = next(n for n in src.object_names() if n not in (a, b) and in_relation_any(window.store, source_id, n, a) == [])
    click_object(qtbot, src, a)  # a third click starts over
    click_object(qtbot, src, e)
    panel.target.scene_spin.setValue(target_id)
    click_object(qtbot, tgt, c)
    assert clicked(qtbot, panel, panel.solve_button)[-1] == (
        f"no expected answer is known: the source scene has no confirmed label of {e} to {a}: "
        "which relation it shows is not known"
    )


def in_relation_any(store, scene_id: int, subject: str, obj: str) -> list[str]:
    from mfv_desktop.store.labels import relations_between

    return relations_between(store, scene_id, subject, obj) or []
