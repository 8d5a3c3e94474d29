"""The scene library: filters, navigation and lazy paging over the store (offscreen)."""

from __future__ import annotations

import pytest

from mfv_desktop.progress import run_to_end
from mfv_desktop.store import scenes as repo

pytestmark = pytest.mark.usefixtures("qapp")


@pytest.fixture
def library(qtbot, store, abs_scenes):
    from mfv_desktop.ui.library import SceneLibrary

    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    lib = SceneLibrary(store)
    qtbot.addWidget(lib)
    lib.show()
    return lib


def test_filters_narrow_the_list_to_what_the_store_counts(library, store, abs_scenes):
    assert library.count.text() == f"{len(abs_scenes)} scenes"
    for kw in ({"split": "b"}, {"relation": "above"}, {"object_name": abs_scenes[0].objects[0].name},
               {"dataset": "gen", "split": "a", "relation": "left"}):
        library.set_filters(**{"dataset": None, "split": None, "relation": None, "object_name": None, **kw})
        expected = repo.count_scenes(store, **kw)
        assert library.model.rowCount() == expected > 0
        assert library.count.text() == f"{expected} scenes"
        names = {library.model.row(r).name for r in range(library.model.rowCount())}
        assert names == {p.name for p in repo.page_scenes(store, limit=1000, **kw)}
    library.set_filters(relation=None, object_name=None, split="b")
    assert library.model.rowCount() == sum(s.split == "b" for s in abs_scenes) < len(abs_scenes)


def test_next_previous_and_select_far_down(qtbot, library, store):
    seen = []
    library.sceneActivated.connect(seen.append)
    first = library.current_scene_id()
    library.next_scene()
    library.next_scene()
    library.previous_scene()
    ids = [p.id for p in repo.page_scenes(store, limit=5)]
    assert first == ids[0] and seen == [ids[1], ids[2], ids[1]]
    last = repo.page_scenes(store, offset=35, limit=1)[0].id
    assert library.select_scene(last) and library.current_scene_id() == last
    library.set_filters(split="a")  # the current scene (split b) is hidden: the first one becomes current
    assert library.current_scene_id() != last


def test_thumbnails_are_made_off_the_gui_thread_into_a_cache(qtbot, library, store):
    from PySide6.QtCore import Qt

    library.model.data(library.model.index(0), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: not library.model.is_placeholder(0), timeout=10000)
    s = library.model.row(0)
    assert (store.data_dir / "cache" / "thumbs" / f"{s.image.stem}-96.png").is_file()


def test_a_large_library_fetches_only_the_pages_it_shows(qtbot, store, abs_scenes):
    from mfv_desktop.ui import library as lib_mod

    many = [s.with_(id=f"{s.id}-{i}") for i in range(17) for s in abs_scenes][:600]
    run_to_end(repo.add_scenes(store, "big", many, batch=600))
    calls = []
    real = lib_mod.repo.page_scenes

    def counting(*a, **kw):
        calls.append(a[1] if len(a) > 1 else kw.get("offset"))
        return real(*a, **kw)

    lib_mod.repo.page_scenes = counting
    try:
        lib = lib_mod.SceneLibrary(store)
        qtbot.addWidget(lib)
        lib.show()
        qtbot.wait(50)
        assert lib.model.rowCount() == 600 and calls[0] == 0 and 200 not in calls  # not every page
        bar = lib.view.verticalScrollBar()
        bar.setValue(bar.maximum())  # jump to the end
        qtbot.wait(50)
        assert sorted(set(calls)) == [0, 400]  # the first and the last page, nothing between
        assert lib.model.pages_fetched == 2
    finally:
        lib_mod.repo.page_scenes = real
