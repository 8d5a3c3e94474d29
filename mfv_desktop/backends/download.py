"""Getting a model in place: check a model's files (and load it, reporting its geometry), and fetch
OpenFlamingo-4B's files from the Hugging Face Hub into a folder. Both are generators of Progress
(run them with `mfv_desktop.progress.drive`); the desktop app's model manager and the CLI share them.

Nothing here imports torch or huggingface_hub at module level.
"""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path
from typing import Any, Generator

from mfv_desktop.progress import Progress

from .base import BackendError

#: OpenFlamingo-4B (reference/openflamingo.md): the Flamingo checkpoint, its language model, its vision tower
OF4B_CHECKPOINT = ("openflamingo/OpenFlamingo-4B-vitl-rpj3b-langinstruct", "checkpoint.pt")
OF4B_LM_REPO = "togethercomputer/RedPajama-INCITE-Instruct-3B-v1"
OF4B_LM_FOLDER = "RedPajama-INCITE-Instruct-3B-v1"
OF4B_CLIP = ("timm/vit_large_patch14_clip_224.openai", "open_clip_pytorch_model.bin")
#: what the language model needs (config, tokenizer, weights); other frameworks' weights are skipped
LM_PATTERNS = ("*.json", "*.txt", "*.model", "*.safetensors", "pytorch_model*.bin")
NO_NETWORK = ("no network: copy the files into the folder instead; see README (\"OpenFlamingo-4B on a GPU "
              "workstation\")")


def check_model(ref: str, device: str | None = "cpu", dtype: str = "fp32",
                load: bool = True) -> Generator[Progress, None, dict[str, Any]]:
    """Check a model reference ('bundled', 'tiny', or a folder): its files first (a BackendError
    names the missing file and what to put there), then, with `load`, load it and report its
    geometry, id and load time."""
    from .loading import _LOADED, load_backend, model_folder
    from .registry import family_of

    total = 2 if load else 1
    yield Progress(0, total, f"checking the files of {ref}")
    folder = model_folder(ref)
    family = family_of(ref)
    result: dict[str, Any] = {"ref": ref, "folder": str(folder), "family": family.name,
                              **family.backend_class().check_files(folder)}
    if not load:
        return result
    yield Progress(1, total, f"loading {result['model_id']} on {device} ({dtype})")
    cached = (ref, str(device), dtype) in _LOADED
    t0 = time.perf_counter()
    backend = load_backend(ref, device=device, dtype=dtype)
    result.update(model_id=backend.model_id, geometry=backend.geometry.to_json(), device=str(device), dtype=dtype,
                  load_s=round(time.perf_counter() - t0, 2), cached=cached)
    yield Progress(total, total, "loaded")
    return result


def _hub():
    try:
        import huggingface_hub
    except ImportError as e:
        raise BackendError("downloading needs the huggingface_hub package (pip install huggingface_hub); "
                           "or copy the files into the folder instead, see README") from e
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


def download_openflamingo_4b(folder: str | Path) -> Generator[Progress, None, dict[str, Any]]:
    """Fetch OpenFlamingo-4B's files into `folder`, one file at a time (progress per file):
    `checkpoint.pt`, the RedPajama-INCITE-Instruct-3B-v1 language model into its own subfolder and
    the open_clip ViT-L-14 OpenAI weights; then check the folder. Files already there are kept.
    Without a network a BackendError says to copy the files in instead."""
    hub = _hub()
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield Progress(0, 1, f"listing the files of {OF4B_LM_REPO}")
        listed = hub.list_repo_files(OF4B_LM_REPO)
        lm_files = [f for f in listed if "/" not in f and any(fnmatch.fnmatch(f, p) for p in LM_PATTERNS)]
        if any(f.endswith(".safetensors") for f in lm_files):  # one copy of the weights is enough
            lm_files = [f for f in lm_files if not fnmatch.fnmatch(f, "pytorch_model*.bin")]
        wanted = [(OF4B_CHECKPOINT[0], OF4B_CHECKPOINT[1], folder),
                  *((OF4B_LM_REPO, f, folder / OF4B_LM_FOLDER) for f in lm_files),
                  (OF4B_CLIP[0], OF4B_CLIP[1], folder)]
        for i, (repo, name, dest) in enumerate(wanted):
            yield Progress(i, len(wanted) + 1, f"{repo}: {name} ({i + 1} of {len(wanted)})")
            hub.hf_hub_download(repo, name, local_dir=str(dest))
    except BackendError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the hub says, the user needs the way out
        if _network_error(e):
            raise BackendError(f"{NO_NETWORK}. {type(e).__name__}: {e}") from e
        raise BackendError(f"downloading OpenFlamingo-4B into {folder} failed ({type(e).__name__}: {e}); "
                           "copy the files into the folder instead, see README") from e
    yield Progress(len(wanted), len(wanted) + 1, f"checking {folder}")
    result = yield from check_model(str(folder), load=False)
    yield Progress(len(wanted) + 1, len(wanted) + 1, "done")
    return {**result, "downloaded": [f"{repo}/{name}" for repo, name, _ in wanted]}
