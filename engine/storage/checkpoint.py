"""OffsetCheckpointFile: Kafka's per-log-directory checkpoint of one offset per partition.

Layout (text, as Kafka's recovery-point-offset-checkpoint, log-start-offset-checkpoint and
replication-offset-checkpoint):
    0                       version
    2                       number of entries
    my-topic 0 1234         topic, partition, offset
    my-topic 1 99

Crash behaviour: written to <name>.tmp, fsynced, renamed over the old file and the directory
fsynced, so a reader sees the old or the new checkpoint, never a mix. A file that does not parse
is reported by read(); the log manager then treats every partition as unflushed and recovers it.
"""

import os

from engine.common import TopicPartition

_VERSION = 0


class CheckpointError(Exception):
    pass


class OffsetCheckpointFile:
    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, offsets: dict[TopicPartition, int]) -> None:
        lines = [str(_VERSION), str(len(offsets))]
        lines += [f"{tp.topic} {tp.partition} {offset}" for tp, offset in sorted(offsets.items())]
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        directory = os.open(os.path.dirname(self.path) or ".", os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def read(self) -> dict[TopicPartition, int]:
        """The checkpointed offsets; {} if the file does not exist."""
        try:
            with open(self.path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return {}
        try:
            if int(lines[0]) != _VERSION:
                raise CheckpointError(f"{self.path}: unknown checkpoint version {lines[0]!r}")
            count = int(lines[1])
            entries = lines[2:]
            if len(entries) != count:
                raise CheckpointError(
                    f"{self.path}: header says {count} entries, found {len(entries)}"
                )
            offsets = {}
            for line in entries:
                topic, partition, offset = line.split(" ")
                offsets[TopicPartition(topic, int(partition))] = int(offset)
            return offsets
        except (IndexError, ValueError) as exc:
            raise CheckpointError(f"{self.path}: malformed checkpoint ({exc})") from exc
