"""Record batch v2 over bytes: header views, CRC-32C, offset patching, records and codecs."""

from engine.records.batch import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    RecordBatch,
    TimestampType,
    iter_batches,
    read_batch_prefix,
)
from engine.records.compression import CompressionType, compress, decompress
from engine.records.record import Record, SimpleRecord, build_batch, decode_records

__all__ = [
    "HEADER_SIZE",
    "LOG_OVERHEAD",
    "CompressionType",
    "Record",
    "RecordBatch",
    "SimpleRecord",
    "TimestampType",
    "build_batch",
    "compress",
    "decode_records",
    "decompress",
    "iter_batches",
    "read_batch_prefix",
]
