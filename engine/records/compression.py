"""The four codecs of record batch v2, framed exactly as Kafka's Java client frames them.

- gzip: a gzip member (RFC 1952).
- snappy: xerial snappy-java framing (magic header, then length-prefixed 32 KiB blocks), which is
  what Kafka writes; raw snappy blocks, which librdkafka writes, are accepted on decompress.
- lz4: an LZ4 frame, independent 64 KiB blocks, no content size (KafkaLZ4BlockOutputStream).
- zstd: a zstd frame; frames without a content size (streamed by zstd-jni) are accepted.

The broker never calls compress: batches are stored as they arrive. These are for building
batches (load generators, tests) and for decoding records (tools, consumers).
"""

import struct
import zlib
from enum import IntEnum

import cramjam
import lz4.frame
import zstandard

from engine.errors import CorruptRecordError


class CompressionType(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)  # magic, version, compatible version
_XERIAL_BLOCK = 32 * 1024
_BLOCK_LENGTH = struct.Struct(">i")
_GZIP_LEVEL = 6  # compression.gzip.level default: zlib's default level
_ZSTD_LEVEL = 3  # compression.zstd.level default


def _snappy_compress(data: bytes) -> bytes:
    out = bytearray(_XERIAL_HEADER)
    view = memoryview(data)
    for start in range(0, len(view), _XERIAL_BLOCK):
        block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK]))
        out += _BLOCK_LENGTH.pack(len(block))
        out += block
    return bytes(out)


def _snappy_decompress(data: bytes) -> bytes:
    if not data.startswith(_XERIAL_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    out = bytearray()
    view = memoryview(data)
    pos = 0
    while pos < len(view):
        if view[pos : pos + len(_XERIAL_MAGIC)] == _XERIAL_MAGIC:  # snappy-java reads
            pos += len(_XERIAL_HEADER)  # concatenated streams, each with its own header
            continue
        (length,) = _BLOCK_LENGTH.unpack_from(view, pos)
        pos += 4
        if length < 0 or pos + length > len(view):
            raise CorruptRecordError("truncated xerial snappy block")
        out += cramjam.snappy.decompress_raw(view[pos : pos + length])
        pos += length
    return bytes(out)


def _zstd_decompress(data: bytes) -> bytes:
    # A decompressobj handles frames that do not record their content size (zstd-jni streams);
    # one per frame, so that concatenated frames decode too and a truncated one is an error.
    out = bytearray()
    while data:
        frame = zstandard.ZstdDecompressor().decompressobj()
        out += frame.decompress(data)
        if not frame.eof:
            raise CorruptRecordError("truncated zstd frame")
        data = frame.unused_data
    return bytes(out)


_COMPRESS = {
    CompressionType.GZIP: lambda data: zlib.compress(data, _GZIP_LEVEL, wbits=31),
    CompressionType.SNAPPY: _snappy_compress,
    CompressionType.LZ4: lambda data: lz4.frame.compress(
        data,
        block_size=lz4.frame.BLOCKSIZE_MAX64KB,
        block_linked=False,
        store_size=False,
    ),
    CompressionType.ZSTD: lambda data: zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data),
}

_DECOMPRESS = {
    CompressionType.GZIP: lambda data: zlib.decompress(data, wbits=31),
    CompressionType.SNAPPY: _snappy_decompress,
    CompressionType.LZ4: lz4.frame.decompress,
    CompressionType.ZSTD: _zstd_decompress,
}


def compress(codec: CompressionType, data: bytes) -> bytes:
    if codec == CompressionType.NONE:
        return bytes(data)
    return _COMPRESS[codec](data)


def decompress(codec: int, data: bytes | bytearray | memoryview) -> bytes:
    """Inflate a batch's records section; a codec failure is a corrupt batch."""
    try:
        codec = CompressionType(codec)
    except ValueError:
        raise CorruptRecordError(f"unknown compression codec {codec}") from None
    if codec == CompressionType.NONE:
        return bytes(data)
    try:
        return _DECOMPRESS[codec](bytes(data))
    except CorruptRecordError:
        raise
    except Exception as exc:  # each codec library raises its own error types
        raise CorruptRecordError(f"{codec.name.lower()} decompression failed: {exc}") from exc
