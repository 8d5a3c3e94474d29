"""Object stamps: the built-in kinds, cut-outs, names."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from mfv_desktop.scenes import (
    ELONGATED,
    KINDS,
    CutoutStamp,
    ProceduralStamp,
    SceneError,
    check_single_token,
    procedural_stamps,
    render_kind,
    stamp_from_id,
    validate_name,
)


def on_white(img: Image.Image) -> np.ndarray:
    """RGB float array of an RGBA image composited on white, centred on a square of its long side."""
    n = max(img.size)
    canvas = Image.new("RGB", (n, n), "white")
    canvas.paste(img, ((n - img.width) // 2, (n - img.height) // 2), img)
    return np.asarray(canvas, dtype=np.float32)


def test_enough_kinds_with_plain_names():
    assert len(KINDS) >= 20 and len(set(KINDS)) == len(KINDS)
    for k in KINDS:
        assert validate_name(k) == k and k.islower() and k.isalpha() and len(k) <= 6
    assert ELONGATED and ELONGATED <= set(KINDS)


@pytest.mark.parametrize("long_side", [16, 200])
def test_every_kind_renders_tight_with_exact_long_side(long_side):
    for kind in KINDS:
        img = render_kind(kind, long_side)
        assert img.mode == "RGBA" and max(img.size) == long_side, kind
        alpha = np.asarray(img.getchannel("A"))
        assert img.getchannel("A").getbbox() == (0, 0, *img.size), f"{kind}: not tight"
        assert alpha.max() == 255, f"{kind}: no opaque pixel"
        # a transparent background: the square around the object is not filled
        n = max(img.size)
        assert (alpha == 0).sum() + n * n - alpha.size > 0.05 * n * n, f"{kind}: no transparent background"
        if kind in ELONGATED:
            assert img.height >= 2 * img.width, f"{kind} should be upright and thin"


def test_rotate90_lays_flat():
    for kind in ELONGATED:
        up, flat = render_kind(kind, 120), render_kind(kind, 120, rotate90=True)
        assert flat.size == (up.height, up.width)
        assert flat.getchannel("A").getbbox() == (0, 0, *flat.size)


def test_kinds_are_pairwise_distinct_at_32px():
    images = {k: on_white(render_kind(k, 32)) for k in KINDS}
    worst = min((float(np.abs(images[a] - images[b]).mean()), a, b) for a, b in itertools.combinations(KINDS, 2))
    # mean absolute RGB difference over the 32x32 square: identical drawings give 0
    assert worst[0] > 12, f"{worst[1]} and {worst[2]} look alike at 32 px (difference {worst[0]:.1f})"


def test_rendering_is_deterministic():
    a, b = render_kind("apple", 57), render_kind("apple", 57)
    assert a.tobytes() == b.tobytes()


def test_stamp_ids_round_trip(tmp_path):
    for st in procedural_stamps():
        again = stamp_from_id(st.id)
        assert isinstance(again, ProceduralStamp) and again.name == st.name and again.id == st.id
    assert stamp_from_id("apple").id == "procedural:apple"
    with pytest.raises(SceneError, match="unknown object kind 'zebra'"):
        stamp_from_id("procedural:zebra")
    with pytest.raises(SceneError, match="unknown stamp"):
        stamp_from_id("photo:x.png")


def _cutout_png(path, size=(60, 30), box=(10, 5, 50, 25), colour=(200, 30, 30, 255)):
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    img.paste(Image.new("RGBA", (box[2] - box[0], box[3] - box[1]), colour), box[:2])
    img.save(path)
    return path


def test_cutout_loads_crops_and_renders(tmp_path):
    path = _cutout_png(tmp_path / "Brick.png")
    st = CutoutStamp(path)
    assert st.name == "brick" and st.id == f"cutout:{path.resolve()}" and not st.elongated
    img = st.render(80)
    assert img.size == (80, 40) and img.getchannel("A").getbbox() == (0, 0, 80, 40)
    assert np.asarray(img)[20, 40].tolist() == [200, 30, 30, 255]
    again = stamp_from_id(st.id)
    assert again.name == "brick" and again.render(80).tobytes() == img.tobytes()
    thin = CutoutStamp(_cutout_png(tmp_path / "stick.png", box=(5, 12, 55, 18)), name="rod")
    assert thin.name == "rod" and thin.elongated
    assert thin.render(40).size == (40, 5) and thin.render(40, rotate90=True).size == (5, 40)


def test_cutout_errors_name_the_file_and_the_fix(tmp_path):
    corrupt = tmp_path / "broken.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    with pytest.raises(SceneError, match=r"broken\.png.*transparent background"):
        CutoutStamp(corrupt)
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(SceneError, match=r"notes\.png.*not a readable image"):
        CutoutStamp(text)
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (20, 20), (10, 200, 10)).save(jpeg)
    with pytest.raises(SceneError, match=r"photo\.jpg has no alpha channel.*PNG with a transparent background"):
        CutoutStamp(jpeg)
    empty = tmp_path / "empty.png"
    Image.new("RGBA", (20, 20), (0, 0, 0, 0)).save(empty)
    with pytest.raises(SceneError, match=r"empty\.png is fully transparent"):
        CutoutStamp(empty)
    with pytest.raises(SceneError, match=r"missing\.png does not exist"):
        CutoutStamp(tmp_path / "missing.png")
    with pytest.raises(SceneError, match="cannot be used in a prompt"):
        CutoutStamp(_cutout_png(tmp_path / "tea cup.png"))


@pytest.mark.parametrize("bad", ["", "tea cup", "cup.", "Q:cup", "a,b", "3d", "_x", " cup", "cup\n"])
def test_validate_name_refuses(bad):
    with pytest.raises(SceneError):
        validate_name(bad)


@pytest.mark.parametrize("good", ["cup", "Tasse", "t-shirt", "café", "x2"])
def test_validate_name_accepts(good):
    assert validate_name(good) == good


def test_check_single_token_names_every_offender():
    vocab = {"cup", "car", "sun"}

    def count(name: str) -> int:
        return 1 if name in vocab else len(name) // 2

    check_single_token(["cup", "car", "sun"], count, "toy-model")
    with pytest.raises(SceneError) as e:
        check_single_token(["cup", "teapot", "umbrella", "car"], count, "toy-model")
    msg = str(e.value)
    assert "'teapot' (3 tokens)" in msg and "'umbrella' (4 tokens)" in msg and "'cup'" not in msg
    assert "toy-model" in msg and "Rename" in msg
