"""What runs a scenario and keeps what it measured: the Scenario API, the runner and
`kbench run`, statistics, results files and their schema, the environment, resources and the
claims."""
