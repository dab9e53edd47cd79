"""Progress on stderr for long commands: the phase, bytes read and the time spent.

DuckDB and the readers give no callbacks, so the bytes are estimated from the operating system's
count of bytes this process has read (``rchar`` in ``/proc/self/io``, Linux): ingesting a new
file reads it twice (its hash, then its records). Without ``/proc`` only the phase and the time
are shown.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


def _bytes_read() -> int | None:
    try:
        with Path("/proc/self/io").open() as fh:
            for line in fh:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def human_bytes(n: float) -> str:
    """``1536`` -> ``"1.5 KB"`` (decimal units, as file managers show sizes)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


class Progress:
    """Phase lines on stderr; on a terminal, one line that refreshes every ``interval`` s.

    Args:
        enabled: show anything at all.
        stream: where to write (stderr).
        interval: seconds between refreshes of the live line (terminal only).
    """

    def __init__(self, enabled: bool, stream: TextIO | None = None, interval: float = 0.5):
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.live = enabled and self.stream.isatty()
        self.interval = interval
        self._label = ""
        self._expected = 0  # bytes the current phase is expected to read
        self._reads = 1  # how many times it reads its file
        self._done = 0  # bytes of earlier steps, shown in the total
        self._total = 0
        self._start_read: int | None = None
        self._started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _line(self) -> str:
        elapsed = time.perf_counter() - self._started
        text = f"{self._label}: {elapsed:.0f} s"
        now = _bytes_read()
        if self._expected and now is not None and self._start_read is not None:
            part = min(now - self._start_read, self._expected) / self._expected
            size = self._expected / self._reads
            text += f", {part:.0%} of {human_bytes(size)}"
            if self._total:
                text += f"; {human_bytes(self._done + part * size)} of {human_bytes(self._total)} in all"
        return text

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self.stream.write("\r\033[K" + self._line())
            self.stream.flush()

    @contextmanager
    def phase(
        self, label: str, *, size: int = 0, reads: int = 1, done: int = 0, total: int = 0
    ) -> Iterator[None]:
        """Show ``label`` while the block runs, then how long it took.

        Args:
            label: what is happening ("ingest 2/5 events.jsonl").
            size: bytes of the file this phase reads (0: no byte count).
            reads: how many times the phase reads those bytes.
            done: bytes finished by earlier phases (for the running total).
            total: bytes of all phases together (0: no running total).
        """
        if not self.enabled:
            yield
            return
        self._label, self._expected, self._reads = label, size * reads, reads
        self._done, self._total = done, total
        self._start_read, self._started = _bytes_read(), time.perf_counter()
        if self.live:
            self._stop.clear()
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        try:
            yield
        finally:
            if self._thread is not None:
                self._stop.set()
                self._thread.join()
                self._thread = None
                self.stream.write("\r\033[K")
            elapsed = time.perf_counter() - self._started
            sized = f" ({human_bytes(size)})" if size else ""
            self.stream.write(f"{label}{sized}: {elapsed:.1f} s\n")
            self.stream.flush()
