"""The processes an import parses big files with (INGEST_PARSE_WORKERS).

Started when a file is first parsed in pieces, ended with the import's load
phase: queued work is dropped, a piece being parsed is finished (a second
or so), and the processes are joined. They are spawned, not forked: the
import's process holds database connections and threads a fork would copy.
A spawned process imports its parent's main module first, which for the
import worker (services/ingest/worker.py) is the whole pipeline, SQLAlchemy
and all: 0.7 s and 35 MB a worker that parsing needs none of, so the main
module is hidden while the workers start. A worker whose import's process
dies (killed with the ingest service) ends itself rather than wait on a
queue nobody writes to.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import types
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager

log = logging.getLogger(__name__)


class ParsePool:
    """`submit(function, *args)` as a ProcessPoolExecutor takes it; the
    function must live in an importable module, not in `__main__`."""

    def __init__(self, size: int):
        # 1: every file is parsed in the import's own process, as it always was.
        self.size = max(1, size)
        self._executor: ProcessPoolExecutor | None = None

    def submit(self, function, *args) -> Future:
        if self._executor is None:
            self._executor = self._start()
        return self._executor.submit(function, *args)

    def _start(self) -> ProcessPoolExecutor:
        log.info("starting %d parse workers", self.size)
        executor = ProcessPoolExecutor(self.size, initializer=_in_worker,
                                       mp_context=multiprocessing.get_context("spawn"))
        # A task for each worker starts them all now (none is idle yet to take
        # a second), while the main module is hidden.
        with _main_module_hidden():
            for _ in range(self.size):
                executor.submit(os.getpid)
        return executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def _main_module_hidden():
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _in_worker() -> None:
    # The import worker's standard output carries its progress protocol
    # (services/ingest/worker.py), read until every holder closes it: a
    # parse worker neither writes there nor keeps it open.
    try:
        os.dup2(2, 1)
    except OSError:
        os.close(1)
    sys.stdout = sys.stderr
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent,), daemon=True,
                         name="parent-watch").start()


def _end_with(parent) -> None:
    parent.join()
    os._exit(1)
