"""Make the dev extras unimportable, as after `pip install .` without them: on PYTHONPATH, this
runs at interpreter start-up in every kbench process of a test (and the brokers it starts)."""

import importlib.abc
import os
import sys

_BLOCKED = frozenset(os.environ.get("KBENCH_BLOCK_MODULES", "").split(","))


class _DevExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (a dev extra)", name=name)
        return None


sys.meta_path.insert(0, _DevExtras())
