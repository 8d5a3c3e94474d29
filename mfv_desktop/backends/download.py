"""Getting a model in place: check a model's files (and load it, reporting its geometry), and fetch
a downloadable model's files (DOWNLOADS: OpenFlamingo-4B, Qwen3-VL-2B/4B-Instruct) from the Hugging
Face Hub into a folder. Both are generators of Progress (run them with `mfv_desktop.progress.drive`);
the desktop app's model manager and the CLI share them.

Nothing here imports torch or huggingface_hub at module level: the model manager lists DOWNLOADS
on the GUI thread.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfv_desktop.errors import BackendError
from mfv_desktop.progress import Progress


@dataclass(frozen=True)
class Source:
    """The files of one Hub repository to fetch: those at its top level that match `patterns`
    (each must match at least one file) or `optional`, saved into `subfolder` of the model folder."""

    repo: str
    patterns: tuple[str, ...]
    optional: tuple[str, ...] = ()
    subfolder: str = ""

    def select(self, listed: list[str]) -> list[str]:
        """The files to fetch out of a repository's listing; BackendError names a required one it lacks."""
        top = [f for f in listed if "/" not in f]
        for p in self.patterns:
            if not any(fnmatch.fnmatch(f, p) for f in top):
                raise BackendError(
                    f"{self.repo} has no file {p!r} (it lists {len(top)} files at its top level): "
                    "has the repository changed? Copy the files into the folder instead, see README"
                )
        chosen = [f for f in top if any(fnmatch.fnmatch(f, p) for p in self.patterns + self.optional)]
        if any(f.endswith(".safetensors") for f in chosen):  # one copy of the weights is enough
            chosen = [f for f in chosen if not fnmatch.fnmatch(f, "pytorch_model*.bin")]
        return chosen


@dataclass(frozen=True)
class Downloadable:
    """A model `mfv download NAME FOLDER` and the model manager can fetch."""

    name: str
    title: str
    #: its family in the registry (backends/registry.py), checked after the download
    family: str
    sources: tuple[Source, ...]
    size: str

    def needs(self) -> str:
        """Which files to copy in by hand, in words."""
        return "; ".join(
            f"{', '.join(s.patterns + s.optional)} from {s.repo}" + (f" into {s.subfolder}/" if s.subfolder else "")
            for s in self.sources
        )


#: what a Hugging Face language model folder needs (config, tokenizer, weights); other frameworks' weights are skipped
LM_PATTERNS = ("*.json", "*.txt", "*.model", "*.safetensors", "pytorch_model*.bin")
#: a Qwen3-VL folder in the Hugging Face layout: config, weights (one file, or shards with their index),
#: tokenizer, image processor; the chat template and the video processor where the repository has them
QWEN3VL_PATTERNS = ("config.json", "*.safetensors", "tokenizer.json", "preprocessor_config.json")
QWEN3VL_OPTIONAL = (
    "generation_config.json",
    "model.safetensors.index.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.json",
    "chat_template.jinja",
    "video_preprocessor_config.json",
)


def _qwen3vl(params: str, gb: str) -> Downloadable:
    title = f"Qwen3-VL-{params}-Instruct"
    return Downloadable(
        title.lower(),
        title,
        "qwen3vl",
        (Source(f"Qwen/{title}", QWEN3VL_PATTERNS, QWEN3VL_OPTIONAL),),
        f"about {gb} (bf16 weights)",
    )


#: every model that can be downloaded: name -> what to fetch (OpenFlamingo-4B: reference/openflamingo.md)
DOWNLOADS: dict[str, Downloadable] = {
    d.name: d
    for d in (
        Downloadable(
            "openflamingo-4b",
            "OpenFlamingo-4B",
            "openflamingo",
            (
                Source("openflamingo/OpenFlamingo-4B-vitl-rpj3b-langinstruct", ("checkpoint.pt",)),
                Source(
                    "togethercomputer/RedPajama-INCITE-Instruct-3B-v1",
                    ("config.json",),
                    LM_PATTERNS,
                    subfolder="RedPajama-INCITE-Instruct-3B-v1",
                ),
                Source("timm/vit_large_patch14_clip_224.openai", ("open_clip_pytorch_model.bin",)),
            ),
            "about 9 GB",
        ),
        _qwen3vl("2B", "4 GB"),
        _qwen3vl("4B", "9 GB"),
    )
}
NO_NETWORK = "no network: copy the files into the folder instead"


def check_model(
    ref: str, device: str | None = "cpu", dtype: str = "fp32", load: bool = True
) -> Generator[Progress, None, dict[str, Any]]:
    """Check a model reference ('bundled', 'tiny', or a folder): its files first (a BackendError
    names the missing file and what to put there), then, with `load`, load it and report its
    geometry, id and load time."""
    from .loading import _LOADED, load_backend, model_folder
    from .registry import family_of

    total = 2 if load else 1
    yield Progress(0, total, f"checking the files of {ref}")
    folder = model_folder(ref)
    family = family_of(ref)
    result: dict[str, Any] = {
        "ref": ref,
        "folder": str(folder),
        "family": family.name,
        **family.backend_class().check_files(folder),
    }
    if not load:
        return result
    yield Progress(1, total, f"loading {result['model_id']} on {device} ({dtype})")
    cached = (ref, str(device), dtype) in _LOADED
    t0 = time.perf_counter()
    backend = load_backend(ref, device=device, dtype=dtype)
    result.update(
        model_id=backend.model_id,
        geometry=backend.geometry.to_json(),
        device=str(device),
        dtype=dtype,
        load_s=round(time.perf_counter() - t0, 2),
        cached=cached,
    )
    yield Progress(total, total, "loaded")
    return result


def _hub():
    try:
        import huggingface_hub
    except ImportError as e:
        raise BackendError(
            "downloading needs the huggingface_hub package (pip install huggingface_hub); "
            "or copy the files into the folder instead, see README"
        ) from e
    return huggingface_hub


def _network_error(e: BaseException) -> bool:
    """The hub could not be reached (offline mode, no connection), as opposed to a refusal by it."""
    if type(e).__name__ in ("OfflineModeIsEnabled", "LocalEntryNotFoundError"):
        return True
    if type(e).__name__ == "HfHubHTTPError" or any(c.__name__ == "HfHubHTTPError" for c in type(e).__mro__):
        return False
    try:
        import requests

        if isinstance(e, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:
        pass
    return isinstance(e, (ConnectionError, TimeoutError))


def download_model(name: str, folder: str | Path) -> Generator[Progress, None, dict[str, Any]]:
    """Fetch a downloadable model's files (DOWNLOADS[name]) into `folder`: every repository listed
    first (a required file it lacks is named before anything large is fetched), then one file at a
    time (progress per file); then check the folder. Files already there are kept. Without a
    network a BackendError starting "no network" says which files to copy in instead."""
    if name not in DOWNLOADS:
        raise BackendError(f"no downloadable model {name!r}: choose one of {', '.join(DOWNLOADS)}")
    model = DOWNLOADS[name]
    hub = _hub()
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        wanted: list[tuple[str, str, Path]] = []
        for i, s in enumerate(model.sources):
            yield Progress(i, len(model.sources), f"listing the files of {s.repo}")
            wanted += [(s.repo, f, folder / s.subfolder) for f in s.select(hub.list_repo_files(s.repo))]
        for i, (repo, file, dest) in enumerate(wanted):
            yield Progress(i, len(wanted) + 1, f"{repo}: {file} ({i + 1} of {len(wanted)})")
            hub.hf_hub_download(repo, file, local_dir=str(dest))
    except BackendError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the hub says, the user needs the way out
        if _network_error(e):
            raise BackendError(
                f"{NO_NETWORK}; see README. {model.title} needs {model.needs()}. {type(e).__name__}: {e}"
            ) from e
        raise BackendError(
            f"downloading {model.title} into {folder} failed ({type(e).__name__}: {e}); "
            f"copy the files into the folder instead ({model.needs()}), see README"
        ) from e
    yield Progress(len(wanted), len(wanted) + 1, f"checking {folder}")
    result = yield from check_model(str(folder), load=False)
    yield Progress(len(wanted) + 1, len(wanted) + 1, "done")
    return {**result, "downloaded": [f"{repo}/{file}" for repo, file, _ in wanted]}


def describe_geometry(g: dict[str, Any]) -> str:
    """A geometry (Geometry.to_json) in one line."""
    return (
        f"{g['n_layers']} layers · {g['n_heads']} heads · d_head {g['d_head']} · d_model {g['d_model']}"
        + (f" · vocabulary {g['vocab_size']}" if g.get("vocab_size") else "")
        + (f" · {len(g['cross_attn_layers'])} cross-attention layers" if g.get("cross_attn_layers") else "")
    )
