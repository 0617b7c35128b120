"""``harness matrix``: many kernels x scenarios x VM sizes, one combined report.

The package is split by job, so that the decisions are pure and the I/O thin:

- :mod:`.plan` -- read a plan file, expand it into jobs, cut a shard (pure);
- :mod:`.schedule` -- what a job costs, which jobs fit a machine now, which
  builds to make (pure);
- :mod:`.job` -- one job = one ``harness run`` subprocess with its own run dir,
  its exit status and results.json read back into a :class:`~.job.JobResult`;
- :mod:`.local` and :mod:`.dask_engine` -- the two engines that run jobs: a
  pool on this machine, and a Dask distributed cluster;
- :mod:`.report` -- results.json, junit.xml, matrix.html and kcidb.json for the
  whole plan.

A job runs as a subprocess rather than in-process so that an engine never
depends on the scenario code (which is being redesigned), a crash or a signal
stays inside one job, and the exit status already is the verdict.
"""
