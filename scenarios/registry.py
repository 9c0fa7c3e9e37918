"""Every scenario kbench knows, in the order `kbench run` runs them."""

from scenarios.batch_compression import BatchCompression
from scenarios.disk_write_pattern import DiskWritePattern
from scenarios.page_cache import PageCache
from scenarios.scenario import Scenario
from scenarios.zero_copy import ZeroCopy

SCENARIOS: dict[str, Scenario] = {
    s.name: s for s in (DiskWritePattern(), PageCache(), ZeroCopy(), BatchCompression())
}
