"""kbench's asv (airspeed velocity) suite: engine hot paths and the scenarios' headline ratios,
tracked across commits.

    asv machine --yes                       # once per machine: describe it for the results
    asv check --python=same                 # import and discover the suite
    asv run --python=same --quick           # one pass of every benchmark, in this environment
    asv run --python=same --set-commit-hash $(git rev-parse HEAD)    # ... kept in .asv/results
    asv run HEAD^!                          # HEAD built and installed in a virtualenv
    asv continuous main HEAD                # two commits, each in its own virtualenv, compared
    asv publish && asv preview              # the HTML site, .asv/html

asv compares lower-is-better, so every tracked figure is a cost with its unit: seconds or
CPU-seconds per GiB, microseconds per request, slowdown ratios (never throughput). Parameters
are small and fixed: a full `asv run` of one commit takes about half a minute on 2 cores.
Files go to the temporary directory (set TMPDIR to measure another filesystem). Figures that
involve the disk, the network or the broker move by tens of percent from run to run on a
shared virtual machine; compare commits on a quiet machine.

asv.conf.json builds the project's wheel and installs it with pip, which brings the project's
own dependencies from pyproject.toml; the matrix adds none. Results, environments and the HTML
site all live under `.asv/` (git-ignored).

Two asv behaviours shape the code:
- every benchmark runs in a process of its own, and `setup_cache` runs once per class in yet
  another one; its result is pickled and handed to each benchmark of the class. Where several
  figures come from the same interleaved rounds (a Log append next to a plain write, a broker's
  produce and fetch), `setup_cache` measures them once and the track_ methods report them.
- asv_runner 0.3 re-runs `setup()` before every timed call of a time_ benchmark and then times
  one call per sample, so the time_ benchmarks here have no `setup()`: their fixture is opened
  when asv unpickles `setup_cache`'s result, once per process, before any timing.
"""
