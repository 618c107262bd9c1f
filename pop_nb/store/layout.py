"""The names of a job folder's files: :class:`~pop_nb.store.jobs.JobFolder` builds every path from
them, and code that lists many folders without making a ``JobFolder`` of each (the job index, the
event stream, analytics) names them from here. Imports nothing, so the fastest paths stay fast."""

STATUS = "tasks-status.json"
EVENTS = "events.jsonl"
USAGE = "usage.jsonl"
METRICS = "metrics.jsonl"
SEED = "seed.json"
RUNNER_LOG = "runner.log"
SPANS = "spans.jsonl"


def save_request(notebook_name: str) -> str:
    """The name of the file, beside a running stage's notebook, that asks the stage to write the notebook
    as it stands (it looks at each cell and output)."""
    return f".{notebook_name}.save-request"
