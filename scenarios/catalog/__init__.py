"""The scenarios: one module each, and the registry of those `kbench run` runs."""
