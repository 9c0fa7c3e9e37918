"""LogFlusher: fsyncs rolled segments on a thread of its own, as Kafka's scheduler flushes a log
up to a new segment after a roll, so that no fsync of a closed segment stalls the event loop.

The loop hands over file paths and the offset they make durable; the flusher thread opens each
path itself (fsync of any descriptor flushes the file's pages), so it never shares a descriptor
with the loop, and a segment that retention removed meanwhile is simply skipped. What completed
comes back through `completed()`, called on the loop thread, which alone advances recovery
points.

Thread safety: `submit`, `completed`, `wait_idle` and `close` may be called from any thread;
the callbacks a caller attaches are not run by the flusher thread but handed back to the caller.
"""

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FlushResult:
    on_done: Callable[[bool], None]  # run by whoever drains completed(): True if all synced
    ok: bool


class LogFlusher:
    def __init__(self, name: str = "log-flusher") -> None:
        self._work: queue.SimpleQueue[tuple[Sequence[str], Callable[[bool], None]] | None] = (
            queue.SimpleQueue()
        )
        self._done: queue.SimpleQueue[FlushResult] = queue.SimpleQueue()
        self._pending = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, paths: Sequence[str], on_done: Callable[[bool], None]) -> None:
        """fsync `paths` in the background; on_done(ok) comes back through completed()."""
        with self._idle:
            self._pending += 1
        self._work.put((tuple(paths), on_done))

    def completed(self) -> list[FlushResult]:
        """What finished since the last call, in submission order."""
        results = []
        while True:
            try:
                results.append(self._done.get_nowait())
            except queue.Empty:
                return results

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until every submitted flush has finished; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout_s)

    def close(self) -> None:
        """Finish what was submitted, then stop the thread."""
        self._work.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            paths, on_done = item
            ok = all(_fsync(path) for path in paths)
            self._done.put(FlushResult(on_done, ok))
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()


def _fsync(path: str) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # deleted by retention (or never written): nothing to make durable
        return True
    except OSError as exc:
        log.error("cannot open %s to fsync it: %s", path, exc)
        return False
    try:
        os.fsync(fd)
        return True
    except OSError as exc:
        log.error("fsync of %s failed: %s", path, exc)
        return False
    finally:
        os.close(fd)
