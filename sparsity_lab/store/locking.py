"""Inter-process run locks (``filelock``) under ``<root>/.locks/``.

One lock per run id serialises the processes that compute or repair a run: a second process
blocks with the log message "waiting for run <id> held by another process", and once it gets the
lock it sees the first one's ``COMPLETE`` marker and reuses the run. Locks are re-entrant within
one ``RunLocks`` object (one store in one process).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from sparsity_lab.store.errors import StoreError

log = logging.getLogger("sparsity_lab.store")

LOCKS = ".locks"


class RunLocks:
    """The locks of the runs under one store root."""

    def __init__(self, root: Path) -> None:
        self.directory = root / LOCKS
        self._locks: dict[str, FileLock] = {}
        self._depth: dict[str, int] = {}
        self._mutex = threading.Lock()

    def path(self, run_id: str, suffix: str = "lock") -> Path:
        return self.directory / f"{run_id}.{suffix}"

    def _lock(self, run_id: str) -> FileLock:
        with self._mutex:
            if run_id not in self._locks:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._locks[run_id] = FileLock(self.path(run_id))
            return self._locks[run_id]

    def held_here(self, run_id: str) -> bool:
        return self._depth.get(run_id, 0) > 0

    @contextmanager
    def hold(self, run_id: str, timeout: float | None = None) -> Iterator[None]:
        """Acquire (waiting at most ``timeout`` seconds; None = forever) and release on exit."""
        if self.held_here(run_id):
            self._depth[run_id] += 1
            try:
                yield
            finally:
                self._depth[run_id] -= 1
            return
        try:
            lock = self._lock(run_id)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                log.warning("waiting for run %s held by another process", run_id)
                lock.acquire(timeout=-1 if timeout is None else timeout)
        except PermissionError as err:
            raise StoreError(f"results store {self.directory.parent} is not writable ({err.strerror})") from None
        self._depth[run_id] = 1
        try:
            yield
        finally:
            self._depth.pop(run_id, None)
            lock.release()

    @contextmanager
    def exclusive(self, run_id: str) -> Iterator[bool]:
        """Yields True if this process may modify the run now (it holds the lock, or nobody does)."""
        if self.held_here(run_id):
            yield True
            return
        try:
            lock = self._lock(run_id)
            lock.acquire(timeout=0)
        except (Timeout, OSError):  # OSError: a read-only store, which nobody can modify
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def held_elsewhere(self, run_id: str) -> bool:
        """True while another process (or another store object) holds the run's lock."""
        if self.held_here(run_id) or not self.path(run_id).exists():
            return False
        probe = FileLock(self.path(run_id))
        try:
            probe.acquire(timeout=0)
        except Timeout:
            return True
        except OSError:  # a read-only store: nobody can be writing it
            return False
        probe.release()
        return False

    def manifest_lock(self, run_id: str) -> FileLock:
        """A short-lived lock around read-modify-write of the run's manifest.json."""
        self.directory.mkdir(parents=True, exist_ok=True)
        return FileLock(self.path(run_id, "manifest.lock"))
