"""The store's error type."""


class StoreError(RuntimeError):
    """A store operation that cannot proceed; the message names the run and the file."""
