"""The store's errors; each message names the file and what to do."""


class StoreError(RuntimeError):
    pass


class StoreLocked(StoreError):
    """Another process is writing to this store."""


class StoreTooNew(StoreError):
    """The database was written by a newer mfv_desktop."""


class StoreReadOnly(StoreError):
    """A write was attempted on a store opened read-only."""


class ArtifactCorrupt(StoreError):
    """An artifact file is missing or its bytes no longer match its hash."""
