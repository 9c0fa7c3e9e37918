"""Operator tools over the engine's files (kafka-dump-log and friends)."""
