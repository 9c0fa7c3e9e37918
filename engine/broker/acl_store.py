"""AclStore: a single broker's ACLs (a cluster's are in the controller's metadata log), in its
log directory:
    acls.json   {"<acl id>": {"resource_type": 2, "resource_name": "t", "pattern_type": 3,
                              "principal": "User:alice", "host": "*", "operation": 3,
                              "permission_type": 3}, ...}
changed by the same AccessControlEntryRecords and RemoveAccessControlEntryRecords the controller
writes, and replaced atomically (written to a temporary file, fsynced, renamed), so a crash leaves
the old set or the new one, never part of a request's change.

Not thread-safe: the event loop's thread alone uses it.
"""

import dataclasses
import json
import os
import uuid
from collections.abc import Iterable
from typing import Any

from engine.metadata.acl import StandardAcl
from engine.metadata.image import ClusterImage, MetadataDelta

ACLS_FILE = "acls.json"


class AclStore:
    def __init__(self, log_dir: str) -> None:
        self.path = os.path.join(log_dir, ACLS_FILE)
        self.acls: dict[uuid.UUID, StandardAcl] = {}
        if os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as f:
                try:
                    stored = json.load(f)
                    self.acls = {uuid.UUID(k): StandardAcl(**v) for k, v in stored.items()}
                except (ValueError, TypeError, AttributeError) as exc:
                    raise RuntimeError(f"{self.path}: not an ACL file ({exc})") from None

    def apply(self, records: Iterable[Any]) -> None:
        """Replay the ACL records (as a broker replays the metadata log) and keep the result."""
        records = list(records)
        if not records:
            return
        delta = MetadataDelta(ClusterImage("", -1, acls=self.acls))
        for record in records:
            delta.replay(record)
        self.acls = dict(delta.apply().acls)
        with open(self.path + ".tmp", "w", encoding="utf-8") as f:
            json.dump(
                {str(k): dataclasses.asdict(v) for k, v in self.acls.items()},
                f,
                indent=1,
                sort_keys=True,
            )
            f.flush()
            os.fsync(f.fileno())
        os.replace(self.path + ".tmp", self.path)
