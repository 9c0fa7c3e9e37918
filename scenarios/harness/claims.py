"""The widely repeated claims about Kafka's speed that the suite gives a measured verdict on.

Each has the figure people quote and where it comes from; a scenario's ClaimCheck names the
contrast and threshold that decide it, and stats.judge writes the rule next to the verdict.
"""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Claim:
    id: str
    claim: str
    quoted: str
    source: str
    scenario: str  # the scenario that tests it, or "(later)" when none does yet


CLAIMS: dict[str, Claim] = {
    c.id: c
    for c in (
        Claim(
            "seq-write",
            "Appending sequentially is far faster than writing at random positions",
            "600 MB/s linear vs ~100 KB/s random on 6-disk RAID-5 (over 6000x); "
            "often restated as 12x",
            "Apache Kafka documentation, design: Don't fear the filesystem; popular articles",
            "disk-write-pattern",
        ),
        Claim(
            "page-cache-write",
            "Writes go to the page cache and are flushed later, so a broker write costs about a "
            "memory copy",
            "broker writes are basically memory writes",
            "Kafka documentation, design; popular articles",
            "disk-write-pattern",
        ),
        Claim(
            "page-cache-read",
            "Consumers that keep up read from the page cache, not the disk",
            "a cache hit reads many times faster than a disk read",
            "Kafka documentation, design",
            "page-cache",
        ),
        Claim(
            "zero-copy-time",
            "sendfile (transferTo) cuts transfer time compared with read + write",
            "1 GB: 18,399 ms -> 8,537 ms (2.16x, the threshold); headline: about 65 % less "
            "(2.86x), which the article's own table does not reach at 1 GB",
            "Efficient data transfer through zero copy, IBM developerWorks (cited by Kafka's docs)",
            "zero-copy",
        ),
        Claim(
            "zero-copy-cpu",
            "Zero copy cuts the CPU spent serving consumers",
            "CPU 60 % -> 20 % (-67 %)",
            "popular articles",
            "zero-copy",
        ),
        Claim(
            "zero-copy-copies",
            "The traditional path makes 4 copies and 2 system calls; sendfile removes the "
            "user-space copies",
            "4 copies -> 2",
            "Kafka documentation, design: Efficiency",
            "zero-copy",
        ),
        Claim(
            "batching",
            "Batching messages raises producer throughput by large factors",
            "single producer 100k -> 500k msgs/s (5x)",
            "popular articles; Kafka documentation",
            "batch-compression",
        ),
        Claim(
            "compression-tradeoff",
            "Codecs trade ratio against CPU: gzip high/high, snappy medium/low, lz4 medium/lowest, "
            "zstd highest/medium",
            "qualitative ordering",
            "popular articles; Kafka producer documentation",
            "batch-compression",
        ),
        Claim(
            "linger",
            "A few ms of linger gives bigger batches and similar or lower latency under load",
            "default linger.ms changed 0 -> 5 in Kafka 4.0",
            "KIP-1030, Kafka 4.0 producer docs",
            "batch-compression",
        ),
        Claim(
            "sparse-index",
            "An index entry every ~4 KiB keeps indexes tiny while lookups stay fast",
            "log.index.interval.bytes = 4096",
            "Kafka configuration reference",
            "sparse-index",
        ),
        Claim(
            "acks-cost",
            "acks=all with replication costs throughput compared with acks=1",
            "1 producer, 3 replicas: 786,980 vs 421,823 rec/s",
            "J. Kreps, Benchmarking Apache Kafka: 2 Million Writes Per Second, 2014",
            "replication",
        ),
        Claim(
            "single-producer",
            "One producer, 100-byte records, no replication",
            "821,557 rec/s (78.3 MB/s); one consumer 940,521 rec/s",
            "Kreps 2014",
            "node-peak",
        ),
        Claim(
            "e2e-latency",
            "End-to-end latency stays in single-digit milliseconds",
            "p50 2 ms, p99 3 ms, p99.9 14 ms",
            "Kreps 2014",
            "e2e-latency",
        ),
        Claim(
            "consumer-latency",
            "Tuning the consumer (batch fetch, long poll) drops consume latency",
            "100 ms -> 10 ms (10x)",
            "popular articles",
            "consumer-fetch",
        ),
        Claim(
            "partitions",
            "More partitions give more parallelism; very many partitions on one disk turn appends "
            "into scattered writes",
            "-",
            "Kafka documentation; widely discussed",
            "partitions",
        ),
        Claim(
            "node-peak",
            "One well-equipped node handles ~20 million messages/s, ~600 MB/s",
            "20M msgs/s, 600 MB/s; Confluent 2020: 605 MB/s peak",
            "a widely read course on message queues; Confluent 2020 benchmark",
            "node-peak",
        ),
        Claim(
            "async-send",
            "Async send with callbacks is much faster than waiting for each send",
            "sync send is accurate but low throughput; async is the production choice",
            "popular articles; Kafka producer documentation",
            "async-send",
        ),
        Claim(
            "consumer-group-parallel",
            "Consumers in a group share a topic's partitions, so throughput scales with members "
            "up to the partition count",
            "several consumers in a group consume one topic together for high throughput",
            "popular articles",
            "partitions",
        ),
        Claim(
            "consumers-x2",
            "Give a topic twice as many partitions as its group has consumers",
            "partitions = consumers x 2",
            "popular articles (the rule of thumb of consumer-group-parallel)",
            "partitions",
        ),
        Claim(
            "pull-model",
            "Pulling with long polls avoids the load swings of push and wasted requests",
            "pull avoids message pile-up and lowers latency",
            "popular articles; Kafka design: Push vs. pull",
            "consumer-fetch",
        ),
        Claim(
            "segments",
            "Splitting a partition into segments keeps files small and makes cleanup cheap",
            "segmented storage and automatic cleanup prevent oversized files",
            "popular articles; Kafka documentation",
            "segments",
        ),
        Claim(
            "durability",
            "Kafka acknowledges writes in the page cache and relies on replication, not fsync, "
            "for durability",
            "writes go to the page cache and the OS flushes later; readers ask whether a crash "
            "before the flush loses data",
            "popular articles and their readers' questions; Kafka documentation: Replication",
            "durability",
        ),
        Claim(
            "follower-fetch",
            "Consumers may read from a follower replica",
            "consumers read follower replicas",
            "popular articles; KIP-392 (Allow consumers to fetch from closest replica)",
            "follower-fetch",
        ),
        Claim(
            "eos-cost",
            "Transactions (exactly-once) cost throughput",
            "a few percent at 100 ms commit intervals (Confluent) vs 40 % lower throughput and "
            "3x p99 (Conduktor)",
            'Confluent, "Exactly-once Semantics are Possible", 2017; Conduktor blog on '
            "exactly-once cost",
            "exactly-once",
        ),
    )
}


def overall_verdict(checks: Sequence[dict]) -> tuple[str, str]:
    """(verdict, wording) of a claim from the results' entries of its checks in one run: a claim
    that states several things holds when every part does, fails when any part fails."""
    verdicts = [c["verdict"] for c in checks]
    if len(checks) == 1:
        return verdicts[0], checks[0].get("wording") or verdicts[0]
    held = verdicts.count("confirmed")
    parts = f"{held} of {len(checks)} parts hold"
    if held == len(checks):
        return "confirmed", f"confirmed: {parts}"
    if "not reproduced" in verdicts:
        return "not reproduced", f"not reproduced: {parts}"
    return "inconclusive", f"inconclusive: {parts}, the rest undecided"
