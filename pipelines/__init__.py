"""seqae pipelines: baseline features, the comparison against them, scoring jobs and the service,
simulators, and the ``seqae`` command line."""
