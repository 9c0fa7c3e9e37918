"""meta.properties: which node and cluster a log directory belongs to (Kafka's MetaProperties).

Layout, Java properties text:
    version=1
    node.id=<int>
    cluster.id=<base64 uuid>
A directory is formatted once; a process with another node.id, or a cluster with another id, is
refused, so two nodes cannot share a directory and a directory cannot join a second cluster.

Crash behaviour: written to meta.properties.tmp, fsynced and renamed: present whole or absent.
"""

import base64
import os
import uuid

META_PROPERTIES = "meta.properties"


def new_cluster_id() -> str:
    """A random cluster id, as `kafka-storage random-uuid` prints one."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def read_cluster_id(log_dir: str, node_id: int) -> str | None:
    """The directory's cluster id, or None when it is not formatted yet. RuntimeError when it
    belongs to another node."""
    path = os.path.join(log_dir, META_PROPERTIES)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        properties = dict(
            line.split("=", 1) for line in f.read().splitlines() if "=" in line and line[0] != "#"
        )
    stored = int(properties.get("node.id", node_id))
    if stored != node_id:
        raise RuntimeError(f"{path} belongs to node.id {stored}, this process is node.id {node_id}")
    cluster_id = properties.get("cluster.id")
    if not cluster_id:
        raise RuntimeError(f"{path} has no cluster.id")
    return cluster_id


def write_meta_properties(log_dir: str, node_id: int, cluster_id: str) -> None:
    os.makedirs(log_dir, exist_ok=True)
    path = os.path.join(log_dir, META_PROPERTIES)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(f"version=1\nnode.id={node_id}\ncluster.id={cluster_id}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def format_log_dir(log_dir: str, node_id: int, cluster_id: str | None = None) -> str:
    """The directory's cluster id, formatting it first (with cluster_id, or a new one) when it
    has none. RuntimeError when it belongs to another node or cluster."""
    stored = read_cluster_id(log_dir, node_id)
    if stored is None:
        stored = cluster_id or new_cluster_id()
        write_meta_properties(log_dir, node_id, stored)
    elif cluster_id is not None and stored != cluster_id:
        raise RuntimeError(
            f"{os.path.join(log_dir, META_PROPERTIES)} belongs to cluster {stored}, "
            f"not {cluster_id}"
        )
    return stored
