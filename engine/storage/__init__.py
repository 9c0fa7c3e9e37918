"""The partition log on disk: segments, sparse indexes, recovery, retention and flush policy."""

from engine.storage.config import LogConfig
from engine.storage.file_records import FileRecords, FileSlice
from engine.storage.log import FetchDataInfo, FetchIsolation, Log, LogAppendInfo
from engine.storage.log_manager import LogManager
from engine.storage.log_segment import LogSegment

__all__ = [
    "FetchDataInfo",
    "FetchIsolation",
    "FileRecords",
    "FileSlice",
    "Log",
    "LogAppendInfo",
    "LogConfig",
    "LogManager",
    "LogSegment",
]
