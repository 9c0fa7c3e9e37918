"""Kafka wire protocol: framing, request/response codec, zero-copy Fetch framing."""
