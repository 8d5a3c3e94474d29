"""Errors the user sees (torch-free, so that the CLI can name them without loading a model)."""


class BackendError(RuntimeError):
    """A model that cannot be loaded or used; the message names the file and the fix."""


class VectorFileError(ValueError):
    """A function-vector file that cannot work (see `vector_meta`); the message names the file and field."""


class SpecError(ValueError):
    """A job spec with a value no run can use; raised before the run starts, naming the field and the fix."""
