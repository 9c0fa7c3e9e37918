"""The produce path before the write: a request's decode, then every batch's validation."""

import time

from kafka.protocol.producer.produce import ProduceRequest

from engine.protocol.codec import decode_request
from engine.records import SimpleRecord, build_batch, iter_batches

from ._common import GIB, MIB, ROUNDS, batches, median

VALIDATED_BYTES = 32 * MIB


def _validate_and_assign(view: memoryview) -> None:
    """What Log.append_as_leader does to each batch before writing: frame, check, patch."""
    offset = 0
    for batch in iter_batches(view):
        batch.ensure_valid()
        batch.set_offsets(offset, 0)
        offset = batch.next_offset


class BatchValidation:
    """iter_batches + ensure_valid (framing, magic 2, CRC-32C) + set_offsets (base offset and
    leader epoch patched in place) over 32 MiB of 16 KiB batches; the median of 15 passes after
    a warm-up pass."""

    def setup(self):
        self.data = batches(VALIDATED_BYTES)

    def track_crc_parse_patch_seconds_per_gib(self):
        view = memoryview(self.data)
        _validate_and_assign(view)  # warm-up
        seconds = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            _validate_and_assign(view)
            seconds.append(time.perf_counter() - started)
        return median(seconds) * GIB / len(self.data)

    track_crc_parse_patch_seconds_per_gib.unit = "seconds/GiB"


class ProduceRequestDecode:
    """decode_request of the frame the load generator sends: ProduceRequest v7, acks=1, one
    partition holding one ~64 KiB batch of 600 records of 100 bytes."""

    def setup_cache(self):
        cls = ProduceRequest[7]
        batch = bytes(build_batch([SimpleRecord(bytes(100))] * 600, timestamp=1))
        request = cls(
            transactional_id=None,
            acks=1,
            timeout_ms=30_000,
            topic_data=[
                cls.TopicProduceData(
                    name="kbench-asv",
                    partition_data=[
                        cls.TopicProduceData.PartitionProduceData(index=0, records=batch)
                    ],
                )
            ],
        )
        request.with_header(correlation_id=1, client_id="kbench-asv")
        return bytes(request.encode(header=True))

    def time_decode_produce_request(self, frame):
        decode_request(frame)
