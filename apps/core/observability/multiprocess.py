"""prometheus_client's multi-process values (PROMETHEUS_MULTIPROC_DIR), written to their files in
batches instead of at each change.

prometheus_client's own value (values.MultiProcessValue) writes every change to the process's
memory-mapped file at once, after asking the process id (a system call) under a lock: ~0.8 µs a
counter's inc, ~1.6 µs a histogram's observe, and a request served takes ten such writes (its
counter and latency, the rate limiter's Redis call, the SQL statement, the event loop's figures).
`BufferedValue` keeps the same files and keys (MultiProcessCollector reads them unchanged) but a
change only adds in memory and marks the value changed; `flush()` writes the changed ones:

- every FLUSH_SECONDS, from a thread of each process;
- before this process answers /metrics (metrics.exposition), so its own figures are current;
- when a Celery task ends (celery_signals), at an ASGI lifespan's shutdown (slop_platform.asgi),
  and at exit.

So a scrape sees another process's figures at most FLUSH_SECONDS old, and a process killed with -9
loses at most its last FLUSH_SECONDS of changes.

A forked child (granian's workers, Celery's pool) starts its own files from zero, as
prometheus_client's value does; the process id naming them is kept, not asked at each write.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from prometheus_client.mmap_dict import MmapedDict, mmap_key

FLUSH_SECONDS = 1.0

_lock = threading.Lock()
_process_id = [os.getpid()]
_files: dict[str, MmapedDict] = {}
_values: list[BufferedValue] = []
_changed: set[BufferedValue] = set()
_flusher: list[threading.Thread] = []  # this process's thread, once started


class BufferedValue:
    """prometheus_client's ValueClass protocol, for values.ValueClass."""

    _multiprocess = True

    def __init__(
        self,
        typ: str,
        metric_name: str,
        name: str,
        labelnames: Any,
        labelvalues: Any,
        help_text: str,
        multiprocess_mode: str = "",
        **kwargs: Any,
    ) -> None:
        self._prefix = f"{typ}_{multiprocess_mode}" if typ == "gauge" else typ
        self._key = mmap_key(metric_name, name, labelnames, labelvalues, help_text)
        with _lock:
            self._open()
            _values.append(self)
        _start_flusher()

    def _open(self) -> None:
        """This process's file for the value's kind, and the value it holds there (the caller
        holds the lock)."""
        file = _files.get(self._prefix)
        if file is None:
            folder = os.environ["PROMETHEUS_MULTIPROC_DIR"]
            file = _files[self._prefix] = MmapedDict(
                os.path.join(folder, f"{self._prefix}_{_process_id[0]}.db")
            )
        self._file = file
        self._value, self._timestamp = file.read_value(self._key)

    def inc(self, amount: float) -> None:
        with _lock:
            self._value += amount
            self._timestamp = 0.0
            _changed.add(self)

    def set(self, value: float, timestamp: float | None = None) -> None:
        with _lock:
            self._value = value
            self._timestamp = timestamp or 0.0
            _changed.add(self)

    def set_exemplar(self, exemplar: Any) -> None:
        return  # (prometheus_client's multi-process value keeps none either)

    def get(self) -> float:
        with _lock:
            return float(self._value)

    def get_exemplar(self) -> None:
        return None


def flush() -> None:
    """Writes the values changed since the last flush to this process's files."""
    with _lock:
        for value in _changed:
            value._file.write_value(value._key, value._value, value._timestamp)
        _changed.clear()


async def flush_at_shutdown() -> None:
    """For an ASGI lifespan's shutdown (its worker then ends with os._exit: no atexit runs)."""
    flush()


def process_id() -> int:
    """The id naming this process's files (the process's own, kept across its life)."""
    return _process_id[0]


def _flush_every() -> None:
    wake = threading.Event()
    while not wake.wait(FLUSH_SECONDS):
        flush()


def _start_flusher() -> None:
    if not _flusher:
        with _lock:
            if not _flusher:
                thread = threading.Thread(target=_flush_every, name="slop-metrics-flush", daemon=True)
                _flusher.append(thread)
                thread.start()


def _forked() -> None:
    """In a forked child, before anything else runs there: its own files, its values from zero
    (the parent writes what it counted), its own flusher (a thread does not survive a fork), a
    lock no thread of the parent can be holding."""
    global _lock
    _lock = threading.Lock()
    _process_id[0] = os.getpid()
    for file in _files.values():
        file.close()
    _files.clear()
    _changed.clear()
    _flusher.clear()
    for value in _values:
        value._open()
    if _values:
        _start_flusher()


os.register_at_fork(after_in_child=_forked)
atexit.register(flush)
