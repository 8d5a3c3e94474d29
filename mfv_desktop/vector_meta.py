"""What a function-vector file must hold, checked once and without torch (the store imports it too).

A vector file is safetensors with one tensor, "vector": finite floats of shape (d_model,), and two
metadata entries: "format" (FORMAT) and "meta", JSON with the fields of `FunctionVector`. Whatever
another machine wrote is hostile input: every problem is a `VectorFileError` that names the file,
the field and the fix. Geometry that needs the model (the number of heads, the model's own layers)
is checked when the vector meets a model (`FunctionVector.check_fits`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from mfv_desktop.errors import VectorFileError
from mfv_desktop.scenes.model import MAX_TEXT as MAX_NAME
from mfv_desktop.scenes.model import SceneError, check_name

FORMAT = "mfv-function-vector/1"
MAX_FILE_BYTES = 16 << 20
MAX_META_CHARS = 1 << 20
MAX_D_MODEL = 1 << 16
MAX_LAYERS = 1024
MAX_HEADS = 1 << 14
MAX_PARENTS = 256
#: longest label, relation, model id, hook point (characters)
MAX_TEXT = {"label": 1000, "relation": MAX_NAME, "model_id": 300, "hook_point": 200}
BIASES = ("per_head", "none")
KINDS = ("extracted", "finetuned", "composite", "imported")
#: dtype names in a safetensors header that load as float32 without loss of meaning
FLOAT_DTYPES = ("F16", "F32", "F64")
#: the metadata's fields (`FunctionVector`'s, all written by its `save`)
FIELDS = (
    "label",
    "relation",
    "model_id",
    "d_model",
    "n_layers",
    "layer",
    "heads",
    "bias",
    "strength",
    "hook_point",
    "provenance",
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
FIX = "export the vector again with `mfv extract`, `mfv finetune` or `mfv compose`"


def _int(meta: dict, key: str, lo: int, hi: int, what: str) -> int:
    v = meta[key]
    if not isinstance(v, int) or isinstance(v, bool):
        raise VectorFileError(f"field '{key}' must be a whole number, not {type(v).__name__}")
    if not lo <= v < hi:
        raise VectorFileError(f"field '{key}' is {v}; {what}")
    return v


def _text(meta: dict, key: str) -> str:
    v = meta[key]
    if not isinstance(v, str):
        raise VectorFileError(f"field '{key}' must be text, not {type(v).__name__}")
    if not v.strip() or len(v) > MAX_TEXT[key] or not v.isprintable():
        raise VectorFileError(
            f"field '{key}' must be 1-{MAX_TEXT[key]} printable characters (got {len(v)} characters: {v[:40]!r})"
        )
    if key == "relation":  # the rule every relation name follows (it names folders of results)
        try:
            check_name(v, "field 'relation'")
        except SceneError as e:
            raise VectorFileError(str(e)) from None
    return v


def _finite(v: Any, what: str) -> float:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise VectorFileError(f"{what} must be a finite number, not {v!r}")
    return float(v)


def _parents(prov: dict) -> None:
    parents = prov.get("parents", [])
    if not isinstance(parents, list) or len(parents) > MAX_PARENTS:
        raise VectorFileError(f"field 'provenance.parents' must be a list of at most {MAX_PARENTS} parts")
    for i, p in enumerate(parents):
        if not isinstance(p, dict):
            raise VectorFileError(f"field 'provenance.parents[{i}]' must be an object, not {type(p).__name__}")
        if not isinstance(p.get("sha256"), str) or not _SHA256.fullmatch(p["sha256"]):
            raise VectorFileError(f"field 'provenance.parents[{i}].sha256' must be 64 lowercase hex digits")
        _finite(p.get("weight"), f"field 'provenance.parents[{i}].weight'")
        if not isinstance(p.get("file", ""), (str, type(None))):
            raise VectorFileError(f"field 'provenance.parents[{i}].file' must be text")


def check_meta(meta: Any) -> dict[str, Any]:
    """The metadata as `FunctionVector`'s fields (other keys dropped, the strength a float), or
    VectorFileError naming the field. Geometry is checked within the vector's own model."""
    if not isinstance(meta, dict):
        raise VectorFileError(f"its metadata must be a JSON object, not {type(meta).__name__}")
    missing = [k for k in FIELDS if k not in meta]
    if missing:
        raise VectorFileError(f"its metadata lacks {', '.join(repr(k) for k in missing)}")
    meta = {k: meta[k] for k in FIELDS}
    for key in MAX_TEXT:
        _text(meta, key)
    _int(meta, "d_model", 1, MAX_D_MODEL + 1, f"a model's width is 1-{MAX_D_MODEL}")
    n_layers = _int(meta, "n_layers", 1, MAX_LAYERS + 1, f"a model has 1-{MAX_LAYERS} layers")
    _int(meta, "layer", 0, n_layers, f"the injection layer must be one of the model's layers 0-{n_layers - 1}")
    heads = meta["heads"]
    if not isinstance(heads, list) or len(heads) > MAX_HEADS:
        raise VectorFileError(f"field 'heads' must be a list of at most {MAX_HEADS} [layer, head] pairs")
    for h in heads:
        if not isinstance(h, list) or len(h) != 2 or not all(isinstance(x, int) and not isinstance(x, bool) for x in h):
            raise VectorFileError(f"field 'heads' holds {str(h)[:40]}; each head is a [layer, head] pair of numbers")
        if not 0 <= h[0] < n_layers or not 0 <= h[1] < MAX_HEADS:
            raise VectorFileError(
                f"field 'heads' holds head {h}: its layer must be 0-{n_layers - 1} and its index not negative"
            )
    if meta["bias"] not in BIASES:
        raise VectorFileError(f"field 'bias' is {str(meta['bias'])[:40]!r}; use {' or '.join(BIASES)}")
    meta["strength"] = _finite(meta["strength"], "field 'strength'")
    prov = meta["provenance"]
    if not isinstance(prov, dict):
        raise VectorFileError(f"field 'provenance' must be an object, not {type(prov).__name__}")
    if prov.get("kind", "extracted") not in KINDS:
        raise VectorFileError(
            f"field 'provenance.kind' is {str(prov.get('kind'))[:40]!r}; use one of {', '.join(KINDS)}"
        )
    _parents(prov)
    return meta


def check_vector(array: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """The array when it is a finite vector of the metadata's width, else VectorFileError."""
    if array.shape != (meta["d_model"],):
        raise VectorFileError(
            f"holds a vector of shape {tuple(array.shape)}; its field 'd_model' says ({meta['d_model']},)"
        )
    if not np.isfinite(array).all():
        raise VectorFileError(f"holds a vector with {int((~np.isfinite(array)).sum())} NaN or infinite values")
    return array


def _no_constant(name: str) -> Any:
    raise VectorFileError(f"its metadata holds {name}; numbers must be finite")


def read_header(path: str | Path) -> dict[str, str] | None:
    """The safetensors metadata of a function-vector file, None when the file is not one (another
    kind of safetensors file, or no safetensors at all)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
    except Exception:  # noqa: BLE001 - not a safetensors file: not a vector
        return None
    return header if header.get("format") == FORMAT else None


def read_vector_file(path: str | Path) -> tuple[dict[str, Any], np.ndarray]:
    """(checked metadata, the vector as float32) of a function-vector file; VectorFileError names
    the file, what is wrong and the fix."""
    from safetensors import safe_open

    path = Path(path)
    try:
        try:
            size = path.stat().st_size
        except OSError as e:
            raise VectorFileError(f"cannot be read ({e.strerror or e})") from e
        if size > MAX_FILE_BYTES:
            raise VectorFileError(f"is {size >> 20} MiB; a function vector file is at most {MAX_FILE_BYTES >> 20} MiB")
        try:
            with safe_open(str(path), framework="numpy") as f:
                header, keys = f.metadata() or {}, list(f.keys())
                dtype = f.get_slice("vector").get_dtype() if "vector" in keys else None
                array = f.get_tensor("vector") if dtype in FLOAT_DTYPES else None
        except Exception as e:  # noqa: BLE001 - whatever is wrong, it is the file
            raise VectorFileError(
                f"is not a function vector file (not safetensors: {type(e).__name__}: {str(e)[:200]})"
            ) from e
        return _checked(header, keys, dtype, array)
    except VectorFileError as e:
        raise VectorFileError(f"{path}: {e}; {FIX}") from e


def read_vector_bytes(data: bytes) -> tuple[dict[str, Any], np.ndarray]:
    """(checked metadata, the vector as float32) of a function-vector file's bytes (one held in
    memory, such as a store artifact); VectorFileError says what is wrong (the caller names where)."""
    from safetensors.numpy import load

    if len(data) > MAX_FILE_BYTES:
        raise VectorFileError(f"is {len(data) >> 20} MiB; a function vector file is at most {MAX_FILE_BYTES >> 20} MiB")
    try:
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + n])
        info = header.get("__metadata__") or {}
        keys = [k for k in header if k != "__metadata__"]
        dtype = header["vector"].get("dtype") if isinstance(header.get("vector"), dict) else None
        array = load(data)["vector"] if dtype in FLOAT_DTYPES else None
    except Exception as e:  # noqa: BLE001 - whatever is wrong, it is the file
        raise VectorFileError(f"is not a function vector file (not safetensors: {type(e).__name__})") from e
    return _checked(info, keys, dtype, array)


def _checked(
    header: dict[str, Any], keys: list[str], dtype: str | None, array: np.ndarray | None
) -> tuple[dict[str, Any], np.ndarray]:
    """The checks of a parsed vector file (its safetensors metadata, tensor names, the vector's dtype
    and array): (checked metadata, the vector as float32), or VectorFileError saying what is wrong."""
    if header.get("format") != FORMAT:
        raise VectorFileError(
            f"is not a function vector file (format {str(header.get('format'))[:40]!r}, expected {FORMAT!r})"
        )
    raw = header.get("meta", "")
    if len(raw) > MAX_META_CHARS:
        raise VectorFileError(f"has {len(raw) >> 10} KiB of metadata; at most {MAX_META_CHARS >> 10} KiB")
    try:
        meta = check_meta(json.loads(raw, parse_constant=_no_constant))
    except (ValueError, RecursionError) as e:
        if isinstance(e, VectorFileError):
            raise
        raise VectorFileError(f"has metadata that is not JSON ({type(e).__name__})") from e
    if keys != ["vector"]:
        raise VectorFileError(f"holds tensors {keys[:5]}; a function vector file holds one tensor, 'vector'")
    if array is None:
        raise VectorFileError(
            f"holds a {dtype} vector; a function vector is floating point ({', '.join(FLOAT_DTYPES)})"
        )
    return meta, check_vector(array.astype(np.float32), meta)
