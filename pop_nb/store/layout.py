"""The names of a job folder's files: :class:`~pop_nb.store.jobs.JobFolder` builds every path from
them, and code that lists many folders without making a ``JobFolder`` of each (the job index, the
event stream, analytics) names them from here. Imports nothing, so the fastest paths stay fast."""

STATUS = "tasks-status.json"
EVENTS = "events.jsonl"
USAGE = "usage.jsonl"
METRICS = "metrics.jsonl"
SEED = "seed.json"
RUNNER_LOG = "runner.log"
