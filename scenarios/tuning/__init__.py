"""`kbench tune`: search the client settings that serve an OpenMessaging Benchmark workload
best under a latency bound, on this machine, and prove the gain against Kafka's defaults.

One module per idea: workload (the OMB workload file), space (the properties searched, their
defaults and ranges, the durability floor), objective (the SLO and what makes a trial feasible),
study (the Optuna search, each trial a pipeline measurement, the interleaved proof and the
properties files).
"""
