"""LeaderEpochFileCache: the offset at which each leader epoch of a partition began, and its file.

A follower, or a leader that comes back as one, asks the current leader where its last epoch
ended (OffsetForLeaderEpoch, or Fetch's divergingEpoch) and truncates what the leader never had
(KIP-101, KIP-279); this cache answers that question for the leader and tells a follower which
epoch its log ends in.

Layout of `leader-epoch-checkpoint` in the partition directory (Kafka's LeaderEpochCheckpointFile):
text lines, the version (0), the number of entries, then one `<epoch> <start offset>` per entry,
oldest first, epochs and start offsets both increasing.

Crash behaviour: written to `leader-epoch-checkpoint.tmp`, fsynced and renamed over the old file,
so a reader finds the old entries or the new, never a mix; a write that fails is logged, not
raised (the batch is appended already), and retried at the next change. It is rewritten only
when an epoch begins or the log is truncated at either end, which is rare. A file that does not
parse is logged and dropped: the entries start again from the next append (the epoch a follower asks
about is then answered as unknown, and it truncates to the high watermark, as Kafka does for a
log without epoch entries).

Not thread-safe: the event loop's thread alone uses it.
"""

import bisect
import logging
import os

LEADER_EPOCH_CHECKPOINT = "leader-epoch-checkpoint"
_VERSION = 0
UNDEFINED = -1  # epoch and offset when there is no answer (Kafka's UNDEFINED_EPOCH(_OFFSET))

log = logging.getLogger(__name__)


class LeaderEpochFileCache:
    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, LEADER_EPOCH_CHECKPOINT)
        self._epochs: list[int] = []
        self._starts: list[int] = []
        self._read()

    @property
    def entries(self) -> list[tuple[int, int]]:
        """(epoch, start offset), oldest first."""
        return list(zip(self._epochs, self._starts, strict=True))

    @property
    def latest_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else UNDEFINED

    def assign(self, epoch: int, start_offset: int) -> None:
        """Epoch `epoch` holds start_offset: record where it began, unless it is already known
        to begin at or before it. Entries it contradicts (an epoch at least as new, or a start
        at least as late) are dropped first, so both columns stay increasing."""
        if epoch < 0 or start_offset < 0:
            return
        if self._epochs and self._epochs[-1] == epoch and self._starts[-1] <= start_offset:
            return
        while self._epochs and (self._epochs[-1] >= epoch or self._starts[-1] >= start_offset):
            self._epochs.pop()
            self._starts.pop()
        self._epochs.append(epoch)
        self._starts.append(start_offset)
        self._write()

    def end_offset_for(self, requested: int, log_end_offset: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetForLeaderEpoch: the largest epoch at or below the
        requested one and where it ended (the start of the next epoch, or the log end offset
        for the latest), or (UNDEFINED, UNDEFINED) when it cannot be said."""
        if requested == UNDEFINED or not self._epochs:
            return UNDEFINED, UNDEFINED
        if requested == self._epochs[-1]:
            return requested, log_end_offset
        higher = bisect.bisect_right(self._epochs, requested)  # first epoch above the request
        if higher == len(self._epochs):  # only older epochs: nothing newer started here
            return UNDEFINED, UNDEFINED
        if higher == 0:  # the request predates every epoch we know
            return requested, self._starts[0]
        return self._epochs[higher - 1], self._starts[higher]

    def truncate_from_end(self, end_offset: int) -> None:
        """The log was cut at end_offset: forget epochs that began at or after it."""
        cut = bisect.bisect_left(self._starts, end_offset)
        if cut < len(self._starts):
            del self._epochs[cut:], self._starts[cut:]
            self._write()

    def truncate_from_start(self, start_offset: int) -> None:
        """The log now begins at start_offset: the epoch holding it begins there, older ones
        are forgotten."""
        covering = bisect.bisect_right(self._starts, start_offset) - 1
        if covering < 0 or (covering == 0 and self._starts[0] == start_offset):
            return
        del self._epochs[:covering], self._starts[:covering]
        self._starts[0] = start_offset
        self._write()

    def clear(self) -> None:
        """The log was emptied (truncated fully): no epoch begins in it any more."""
        if self._epochs:
            self._epochs.clear()
            self._starts.clear()
            self._write()

    def _read(self) -> None:
        try:
            with open(self.path, encoding="ascii") as f:
                lines = f.read().split("\n")
        except FileNotFoundError:
            return
        try:
            if int(lines[0]) != _VERSION:
                raise ValueError(f"version {lines[0]!r}")
            count = int(lines[1])
            pairs = [tuple(map(int, line.split())) for line in lines[2 : 2 + count]]
            if len(pairs) != count or any(len(p) != 2 for p in pairs):
                raise ValueError(f"{len(pairs)} entries where {count} were announced")
            epochs, starts = [p[0] for p in pairs], [p[1] for p in pairs]
            if epochs != sorted(set(epochs)) or starts != sorted(set(starts)):
                raise ValueError("epochs and start offsets must both increase")
        except (ValueError, IndexError) as exc:
            log.warning("%s does not parse (%s): its entries are dropped", self.path, exc)
            return
        self._epochs, self._starts = epochs, starts

    def _write(self) -> None:
        lines = [str(_VERSION), str(len(self._epochs))]
        lines += [f"{e} {s}" for e, s in zip(self._epochs, self._starts, strict=True)]
        temporary = self.path + ".tmp"
        try:
            with open(temporary, "w", encoding="ascii") as f:
                f.write("\n".join(lines) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            # The records are appended already and the entries in memory are right: answer
            # from them, and write the file again at the next change (until then a crash finds
            # the older file, whose epochs are still true, only fewer).
            log.error("cannot write %s: %s; kept in memory until the next change", self.path, exc)
