"""kbench's scenarios and the `kbench` command line, by role:

- catalog: the scenarios themselves, one module each, and the registry `kbench run` runs;
- harness: the Scenario API, the runner and `kbench run`, statistics, results files and their
  schema, the environment, resources (CPU, context switches, the page cache) and the claims;
- clients: what drives load and talks to a broker: the load generator, the fetch client, the
  real-client producer drivers, payloads, and the broker/cluster launcher;
- reporting: HTML reports, their charts, and run comparison;
- cli: the scenario commands of `kbench` (the engine's own commands are in engine/cli.py).
"""
