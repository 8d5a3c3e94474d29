"""The scene library on real widgets (offscreen): filters, navigation, thumbnails and lazy paging."""

from __future__ import annotations

import threading

import pytest

from mfv_desktop.progress import run_to_end
from mfv_desktop.store import scenes as repo

pytestmark = pytest.mark.usefixtures("qapp")


def _library(qtbot, store):
    from mfv_desktop.ui.curation.library import SceneLibrary

    lib = SceneLibrary(store)
    qtbot.addWidget(lib)
    lib.resize(320, 400)
    lib.show()
    qtbot.waitExposed(lib)
    return lib


@pytest.fixture
def library(qtbot, store, abs_scenes):
    run_to_end(repo.add_scenes(store, "gen", abs_scenes))
    return _library(qtbot, store)


@pytest.fixture
def page_calls(monkeypatch):
    """The offsets the library asks `page_scenes` for."""
    from mfv_desktop.ui.curation import library as lib_mod

    calls: list[int] = []
    real = repo.page_scenes

    def counting(store, offset=0, limit=100, **kw):
        calls.append(offset)
        return real(store, offset, limit, **kw)

    monkeypatch.setattr(lib_mod.repo, "page_scenes", counting)
    return calls


def _ids(library) -> list[int]:
    return [library.model.row(r).id for r in range(library.model.rowCount())]


def test_filters_narrow_the_list_to_what_the_store_counts(library, store, abs_scenes):
    assert library.count.text() == f"{len(abs_scenes)} scenes"
    assert library.model.rowCount() == len(abs_scenes)
    counts = []
    library.countChanged.connect(counts.append)
    some_object = abs_scenes[0].objects[0].name
    for kw in (
        {"split": "b"},
        {"relation": "above"},
        {"object_name": some_object},
        {"status": "confirmed"},
        {"dataset": "gen", "split": "a", "relation": "left", "object_name": some_object},
    ):
        library.set_filters(
            **{"dataset": None, "split": None, "relation": None, "object_name": None, "status": None, **kw}
        )
        expected = repo.count_scenes(store, **kw)
        assert 0 < library.model.rowCount() == expected
        assert library.count.text() == f"{expected} scene{'' if expected == 1 else 's'}"
        assert counts[-1] == expected
        assert _ids(library) == [p.id for p in repo.page_scenes(store, limit=1000, **kw)]
    library.set_filters(dataset=None, relation=None, object_name=None, status=None, split="b")
    assert library.model.rowCount() == sum(s.split == "b" for s in abs_scenes) < len(abs_scenes)
    with pytest.raises(ValueError, match="no split"):
        library.set_filters(split="nowhere")


def test_the_choices_come_from_the_store(library, abs_scenes):
    combo = library.dataset
    assert [combo.itemText(i) for i in range(combo.count())] == ["All data sets", f"gen ({len(abs_scenes)})"]
    assert [library.split.itemData(i) for i in range(library.split.count())] == [None, "a", "b"]
    names = set(library.names.stringList())
    assert names == {o.name for s in abs_scenes for o in s.objects}
    assert library.relation.findData("above") > 0


def test_next_previous_and_select_far_down(library, store):
    seen: list[int] = []
    library.sceneActivated.connect(seen.append)
    ids = [p.id for p in repo.page_scenes(store, limit=1000)]
    assert library.current_scene_id() == ids[0]
    library.next_scene()
    library.next_scene()
    library.previous_scene()
    assert library.current_scene_id() == ids[1] and seen == [ids[1], ids[2], ids[1]]
    library.previous_scene()
    library.previous_scene()  # stays at the first
    assert library.current_scene_id() == ids[0] and seen[-1] == ids[0] and len(seen) == 4
    assert library.select_scene(ids[-1]) and library.current_scene_id() == ids[-1] and seen[-1] == ids[-1]
    library.next_scene()  # stays at the last
    assert library.current_scene_id() == ids[-1]
    bar = library.view.verticalScrollBar()
    assert bar.value() == bar.maximum() > 0  # scrolled down to it
    assert not library.select_scene(10**6)
    library.set_filters(split="a")  # the current scene (split b) is hidden: the first one becomes current
    first_a = repo.page_scenes(store, limit=1, split="a")[0].id
    assert library.current_scene_id() == first_a and seen[-1] == first_a


def test_refresh_keeps_the_current_scene_and_sees_new_data(library, store, abs_scenes):
    ids = [p.id for p in repo.page_scenes(store, limit=1000)]
    library.select_scene(ids[20])
    seen: list[int] = []
    library.sceneActivated.connect(seen.append)
    run_to_end(repo.add_scenes(store, "more", [s.with_(id=f"{s.id}-more") for s in abs_scenes[:5]]))
    library.refresh()
    assert library.current_scene_id() == ids[20] and seen == []  # nothing new to show
    assert library.count.text() == f"{len(abs_scenes) + 5} scenes"
    assert library.dataset.findData("more") > 0
    repo.delete_scene(store, ids[20])
    library.refresh()
    assert library.current_scene_id() == ids[0] and seen == [ids[0]]


def test_thumbnails_are_made_off_the_gui_thread_into_a_cache(qtbot, library, store, monkeypatch):
    from PySide6.QtCore import Qt

    from mfv_desktop.ui.curation import library as lib_mod

    threads = []
    real = lib_mod.make_thumb

    def recording(image, dest):
        threads.append(threading.get_ident())
        return real(image, dest)

    model = library.model
    model.pool.waitForDone()  # the first paint has asked for some already: let those land, then forget them
    qtbot.wait(10)
    assert not model.pending
    model.icons.clear()
    monkeypatch.setattr(lib_mod, "make_thumb", recording)
    index = model.index(0)

    def icon():
        return model.data(index, Qt.ItemDataRole.DecorationRole)

    assert icon().cacheKey() == model.placeholder.cacheKey()
    qtbot.waitUntil(lambda: icon().cacheKey() != model.placeholder.cacheKey(), timeout=10000)
    assert threads and threading.get_ident() not in threads
    assert max(max(s.width(), s.height()) for s in icon().availableSizes()) == 96
    assert (store.data_dir / "cache" / "thumbs" / f"{model.row(0).image.stem}-96.png").is_file()


def test_thumbnail_requests_dropped_from_the_queue_come_back_while_in_view(qtbot, library, monkeypatch):
    from mfv_desktop.ui.curation import library as lib_mod

    monkeypatch.setattr(lib_mod, "QUEUED", 1)  # keep only the newest request waiting
    library.resize(700, 700)
    library.grid.setChecked(True)
    view, model = library.view, library.model
    in_view = [r for r in range(model.rowCount()) if view.visualRect(model.index(r)).intersects(view.viewport().rect())]
    assert len(in_view) > 4

    def thumbs() -> int:  # (asking data() here would ask for thumbnails itself: look at the cache)
        return sum(str(model.row(r).image) in model.icons for r in in_view)

    qtbot.waitUntil(lambda: thumbs() == len(in_view), timeout=15000)


@pytest.fixture(scope="module")
def big(tmp_path_factory, abs_scenes):
    """A store of 600 scenes (three pages), built once for the tests that only read it."""
    from mfv_desktop.store import open_store

    many = [s.with_(id=f"{s.id}-{i}") for i in range(17) for s in abs_scenes][:600]
    with open_store(tmp_path_factory.mktemp("big") / "data") as store:
        run_to_end(repo.add_scenes(store, "big", many, batch=600))
        yield store


@pytest.mark.parametrize("grid", [False, True])
def test_a_jump_to_the_end_fetches_only_the_first_and_last_page(qtbot, big, page_calls, grid):
    lib = _library(qtbot, big)
    lib.grid.setChecked(grid)
    qtbot.wait(50)
    assert lib.model.rowCount() == 600 and page_calls == [0]  # the scroll bar is true, one page read
    bar = lib.view.verticalScrollBar()
    bar.setValue(bar.maximum())
    qtbot.wait(50)
    assert page_calls == [0, 400] and lib.model.pages_fetched == 2


def test_scrolling_fetches_each_page_once_as_it_comes_into_view(qtbot, big, page_calls):
    lib = _library(qtbot, big)
    bar, port = lib.view.verticalScrollBar(), lib.view.viewport().rect()
    shown: set[int] = set()  # the pages of the rows that were in view
    for i in range(21):
        bar.setValue(bar.maximum() * i // 20)
        qtbot.wait(5)
        first = lib.view.indexAt(port.topLeft()).row()
        last = lib.view.indexAt(port.bottomLeft()).row()
        shown |= set(range(first // 200, (last if last >= 0 else 599) // 200 + 1))
        assert {offset // 200 for offset in page_calls} <= shown
    assert page_calls == [0, 200, 400]


def test_a_thumbnail_arriving_repaints_its_row_without_laying_out_every_row(qtbot, big, monkeypatch):
    from PySide6.QtCore import Qt

    from mfv_desktop.ui.curation.library import SceneListModel

    calls = []
    real = SceneListModel.rowCount
    monkeypatch.setattr(SceneListModel, "rowCount", lambda self, *a: calls.append(1) or real(self, *a))
    lib = _library(qtbot, big)  # (PySide looks overrides up when the object is made)
    qtbot.wait(20)
    calls.clear()
    idx = lib.model.index(0)
    lib.model.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])
    qtbot.wait(20)
    assert len(calls) < 50  # QListView's own dataChanged would ask about all 600 rows
    lib.model.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DisplayRole])  # text may change a size: lay out
    qtbot.wait(20)
    assert len(calls) > 600
