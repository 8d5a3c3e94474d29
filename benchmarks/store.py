"""Store benchmark: a store with 10,000 scenes and 50,000 labels; the time to build it, to open it,
and to page through the scene library (plain and filtered), as the GUI does.

    .venv/bin/python benchmarks/store.py [--scenes 10000] [--dir /tmp/mfv-store-bench]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from mfv_desktop.progress import run_to_end
from mfv_desktop.scenes import BASE_RELATIONS, Box, RelationTriple, Scene, SceneObject
from mfv_desktop.store import open_store
from mfv_desktop.store import scenes as repo

NAMES = ("apple", "cup", "key", "hat", "moon", "car", "book", "shoe")


def make_scenes(folder: Path, n: int, seed: int = 0) -> list[Scene]:
    """n scenes, each with its own 64 px image, 6 objects and 5 relation labels."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = folder / f"{i:05d}.png"
        Image.new("RGB", (64, 64), (i % 256, (i // 256) % 256, 128)).save(img)
        names = rng.sample(NAMES, 6)
        objects = tuple(SceneObject(nm, Box(8 * j, 8 * j, 8 * j + 6, 8 * j + 6)) for j, nm in enumerate(names))
        rels = tuple(RelationTriple(names[j + 1], rng.choice(BASE_RELATIONS), names[0]) for j in range(5))
        out.append(
            Scene(
                id=f"s{i:05d}",
                image=str(img),
                width=64,
                height=64,
                objects=objects,
                relations=rels,
                anchor=names[0],
                split=("extract", "test")[i % 2],
            )
        )
    return out


def timed(label: str, fn, n: int | None = None):
    t0 = time.perf_counter()
    res = fn()
    dt = time.perf_counter() - t0
    per = f"  ({1e3 * dt / n:.3f} ms each, {n / dt:,.0f}/s)" if n else ""
    print(f"{label:<44} {dt:8.3f} s{per}")
    return res, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=10_000)
    ap.add_argument("--dir", default="")
    ap.add_argument("--page", type=int, default=100)
    a = ap.parse_args()
    root = Path(a.dir or tempfile.mkdtemp(prefix="mfv-store-bench-"))
    shutil.rmtree(root / "data", ignore_errors=True)
    scenes, _ = timed(f"draw {a.scenes} source images", lambda: make_scenes(root / "src", a.scenes), a.scenes)
    store = open_store(root / "data")
    timed(
        f"add {a.scenes} scenes ({5 * a.scenes} labels)",
        lambda: run_to_end(repo.add_scenes(store, "bench", scenes, batch=500)),
        a.scenes,
    )
    store.close()
    store, t_open = timed("open the store (lock, revision check)", lambda: open_store(root / "data"))
    n, _ = timed("count scenes", lambda: repo.count_scenes(store, "bench"))
    assert n == a.scenes
    with store.session() as s:
        from mfv_desktop.store import models as m

        n_labels = s.query(m.RelationLabel).count()
    print(f"{'labels in the store':<44} {n_labels:8d}")
    pages = (n + a.page - 1) // a.page

    def page_all(**filters):
        seen = 0
        for i in range(pages):
            seen += len(repo.page_scenes(store, offset=i * a.page, limit=a.page, dataset="bench", **filters))
        return seen

    _, dt = timed(f"page through all ({pages} pages of {a.page})", page_all, pages)
    _, dt_f = timed("page through, filtered (relation=above)", lambda: page_all(relation="above"), pages)
    first, dt_first = timed("first page of the library", lambda: repo.page_scenes(store, 0, a.page, "bench"))
    last, dt_last = timed(
        "last page of the library", lambda: repo.page_scenes(store, (pages - 1) * a.page, a.page, "bench")
    )
    ids = [p.id for p in first]
    timed("open a scene with its labels (x100)", lambda: [repo.get_scene(store, i) for i in ids], len(ids))
    store.close()
    print(
        f"store open={t_open:.3f}s page_ms={1e3 * dt / pages:.2f} filtered_page_ms={1e3 * dt_f / pages:.2f} "
        f"last_over_first={dt_last / dt_first:.2f}"
    )


if __name__ == "__main__":
    main()
