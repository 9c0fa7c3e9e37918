"""Every scenario kbench knows, in the order `kbench run` runs them."""

from scenarios.disk_write_pattern import DiskWritePattern
from scenarios.scenario import Scenario

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (DiskWritePattern(),)}
