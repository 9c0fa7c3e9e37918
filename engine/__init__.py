"""kbench's broker engine: records (bytes) -> storage (files) -> protocol -> broker -> server."""
