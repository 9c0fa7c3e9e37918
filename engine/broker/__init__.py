"""Broker services: partitions, produce/fetch, group coordinator, producer state, topic admin."""
