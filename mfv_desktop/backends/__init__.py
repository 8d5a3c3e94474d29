"""Vision-language models behind one small protocol (torch lives here and below fv/)."""

from .base import DTYPES, Backend, BackendError, Batch, Geometry, batches, resolve_device, resolve_dtype
from .loading import load_backend

__all__ = ["DTYPES", "Backend", "BackendError", "Batch", "Geometry", "batches", "load_backend",
           "resolve_device", "resolve_dtype"]
