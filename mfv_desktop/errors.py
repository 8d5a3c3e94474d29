"""Errors the user sees (torch-free, so that the CLI can name them without loading a model)."""


class BackendError(RuntimeError):
    """A model that cannot be loaded or used; the message names the file and the fix."""
