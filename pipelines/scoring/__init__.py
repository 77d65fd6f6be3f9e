"""Scoring a trained encoder and classifier: batch jobs (``batch``, ``dask_batch``), one event at a
time from stored entity state (``online``, ``state_store``), the HTTP service (``serve``,
``service_schema``) and replaying a table against it (``replay``)."""
