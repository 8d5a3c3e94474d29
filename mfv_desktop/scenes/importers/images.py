"""Plain images as scenes: the file and pixel checks (`check_image`), an upright copy, finding images in a
folder, and paths inside a folder that stay inside it."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from PIL import Image

from ..model import Scene, SceneError, check_text

StrPath = str | os.PathLike[str]


class BadImport(SceneError):
    """An outside file that cannot be imported; the message names the file and the fix."""


#: images with more pixels than this are refused before decoding (decompression bombs)
MAX_PIXELS: int = 50_000_000
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
#: Pillow formats tried when opening an image (Pillow's JPEG opener also opens phones' MPO files)
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF")
#: EXIF orientations that turn the picture by 90 degrees (width and height swap when shown upright)
_TURNED = frozenset({5, 6, 7, 8})

_IMAGE_FIX = "use a PNG, JPEG, BMP, GIF, WebP or TIFF image"

# -- images -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    #: the picture's size shown upright (after its EXIF orientation)
    width: int
    height: int
    format: str
    #: of the file's bytes
    sha256: str
    size: int
    #: the EXIF orientation (1: stored upright; else the store keeps an upright copy, see `upright_png`)
    orientation: int = 1


def _regular_file(path: Path, fix: str, max_bytes: int | None = None) -> int:
    """The size of `path` if it is a non-empty regular file (of at most `max_bytes`); else BadImport."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise BadImport(f"{path}: no such file; {fix}") from None
    except (OSError, ValueError) as e:
        raise BadImport(f"{path}: cannot be read ({e}); {fix}") from e
    if stat.S_ISDIR(st.st_mode):
        raise BadImport(f"{path} is a folder, not a file; {fix}")
    if not stat.S_ISREG(st.st_mode):
        raise BadImport(f"{path} is not a regular file; {fix}")
    if st.st_size == 0:
        raise BadImport(f"{path} is empty; {fix}")
    if max_bytes is not None and st.st_size > max_bytes:
        raise BadImport(f"{path} is {st.st_size:,} bytes, over the limit of {max_bytes:,}; {fix}")
    return st.st_size


#: sha256 -> (width, height, format) of images already decoded in full: an import checks a file,
#: then the store checks it again as it copies it in, and many scenes may share one image
_DECODED: OrderedDict[tuple[str, int], tuple[int, int, str, int]] = OrderedDict()
_DECODED_MAX = 4096


def check_image(path: StrPath, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Open, size-check and fully decode an image; BadImport (naming the file) if it is not usable.
    Bytes already decoded in this process (same sha256) are not decoded again."""
    p = Path(path)
    size = _regular_file(p, _IMAGE_FIX)
    limit = f"over the pixel limit of {max_pixels:,}; use a smaller image"
    try:
        data = p.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        known = _DECODED.get((digest, max_pixels))
        if known is not None:
            _DECODED.move_to_end((digest, max_pixels))
            width, height, fmt, orientation = known
            return ImageInfo(p.resolve(), width, height, fmt, digest, size, orientation)
        with warnings.catch_warnings():
            # our own limit applies (below), whatever Pillow's global MAX_IMAGE_PIXELS says
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
                width, height = img.size
                if width <= 0 or height <= 0:
                    raise BadImport(f"{p} has no pixels ({width}x{height}); {_IMAGE_FIX}")
                if width * height > max_pixels:
                    raise BadImport(f"{p} is {width}x{height} = {width * height:,} pixels, {limit}")
                img.load()
                fmt = str(img.format)
                orientation = img.getexif().get(0x0112, 1)
                orientation = orientation if orientation in range(2, 9) else 1
                if orientation in _TURNED:
                    width, height = height, width
    except BadImport:
        raise
    except Image.DecompressionBombError as e:
        raise BadImport(f"{p} claims a huge size ({e}), {limit}") from e
    except Exception as e:  # Pillow's decoders raise many kinds of errors on hostile bytes
        raise BadImport(
            f"{p} is not a readable image, or is truncated or corrupt ({type(e).__name__}: {e}); {_IMAGE_FIX}"
        ) from e
    _DECODED[(digest, max_pixels)] = (width, height, fmt, orientation)
    if len(_DECODED) > _DECODED_MAX:
        _DECODED.popitem(last=False)
    return ImageInfo(p.resolve(), width, height, fmt, digest, size, orientation)


def upright_png(path: StrPath) -> bytes:
    """The image turned as its EXIF orientation says, as PNG bytes without EXIF (for an image that
    `check_image` found with an orientation other than 1): canvas, thumbnail and model then agree."""
    from PIL import ImageOps

    with Image.open(path, formats=IMAGE_FORMATS) as img:
        up = ImageOps.exif_transpose(img)
        if up.mode not in ("1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"):
            up = up.convert("RGB")
        buf = io.BytesIO()
        up.save(buf, "PNG")
    return buf.getvalue()


def _folder(folder: StrPath, what: str) -> Path:
    p = Path(folder)
    if not p.is_dir():
        raise BadImport(f"{p}: {'not a folder' if p.exists() else 'no such folder'}; choose {what}")
    return p.resolve()


def find_images(folder: StrPath, recursive: bool = True) -> list[Path]:
    """Image files under `folder` (by suffix, any case), sorted; hidden entries and links leading out skipped."""
    root = _folder(folder, "a folder of images")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):  # links to folders are not followed
        dirnames[:] = [d for d in dirnames if not d.startswith(".")] if recursive else []
        for name in filenames:
            if name.startswith(".") or os.path.splitext(name)[1].lower() not in IMAGE_SUFFIXES:
                continue
            p = Path(dirpath, name)
            try:
                target = p.resolve(strict=True)
            except (OSError, RuntimeError):  # dangling link or link loop
                continue
            if target.is_relative_to(root) and target.is_file():
                found.append(p)
    return sorted(found)


def safe_child(root: StrPath, relative: str) -> Path:
    """The resolved path of `relative` inside `root`; BadImport if it is absolute or leads outside."""
    base = Path(root).resolve()
    fix = f"give a path relative to {base} that stays inside it"
    if not isinstance(relative, str) or not relative.strip():
        raise BadImport(f"empty or missing path {relative!r}; {fix}")
    if "\x00" in relative:
        raise BadImport(f"path {relative!r} contains a NUL byte; {fix}")
    if PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).anchor:
        raise BadImport(f"path {relative!r} is absolute; {fix}")
    lexical = Path(os.path.normpath(base / relative))
    if lexical == base or not lexical.is_relative_to(base):
        raise BadImport(f"path {relative!r} leads outside {base} (through '..') or to the folder itself; {fix}")
    try:
        real = lexical.resolve()
    except (OSError, RuntimeError) as e:
        raise BadImport(f"path {relative!r} cannot be resolved ({e}); {fix}") from e
    if not real.is_relative_to(base) or real == base:
        raise BadImport(f"path {relative!r} leads through a link to {real}, outside {base}; {fix}")
    return real


def _meta(info: ImageInfo, source: str, **extra: Any) -> dict[str, Any]:
    """What a scene records of its image file; sha256 is the original file's (the store may keep an
    upright copy of a photo with an EXIF orientation)."""
    turned = {"exif_orientation": info.orientation} if info.orientation != 1 else {}
    return {"source": source, "sha256": info.sha256, "format": info.format, "bytes": info.size, **turned, **extra}


def scene_from_image(path: StrPath, scene_id: str | None = None, split: str = "imported") -> Scene:
    """A scene without objects for a plain image (objects and relations are added by hand later)."""
    info = check_image(path)
    try:
        name = check_text(scene_id or info.path.stem, "the scene name")
    except SceneError as e:
        raise BadImport(f"{path}: {e}; rename the file") from e
    return Scene(name, str(info.path), info.width, info.height, (), (), split=split, meta=_meta(info, "image"))
