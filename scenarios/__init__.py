"""kbench's scenarios and the `kbench` command line."""
