"""`pop status --json` never truncates silently: a page at a time, what was left out and the command for
the next page said on stderr, `--all` for every job."""

from __future__ import annotations

import json

from pop_nb.models.status import JobStatus
from tests.conftest import Project, pop


def test_status_json_pages_and_says_what_it_left_out(project: Project) -> None:
    project.pipeline("p", {"t": {}})
    for i in range(503):
        folder = project.data / "complete" / f"j{i:04d}"
        folder.mkdir(parents=True)
        status = JobStatus(
            job_id=f"j{i:04d}",
            pipeline="p",
            state="done",
            created_at=f"2026-12-01T00:{i // 60:02d}:{i % 60:02d}.000+00:00",
        )
        (folder / "tasks-status.json").write_text(status.model_dump_json())
    first = pop("status", "--json")
    assert first.returncode == 0, first.stderr
    jobs = json.loads(first.stdout)
    assert len(jobs) == 500 and jobs[0]["id"] == "j0502", "newest first"
    assert "jobs 1-500 of 503" in first.stderr and "pop status --json --offset 500" in first.stderr
    rest = pop("status", "--json", "--offset", "500")
    assert [j["id"] for j in json.loads(rest.stdout)] == ["j0002", "j0001", "j0000"]
    assert "jobs 501-503 of 503" in rest.stderr and "next page" not in rest.stderr
    everything = pop("status", "--json", "--all", "--limit", "200")
    assert len({j["id"] for j in json.loads(everything.stdout)}) == 503 and everything.stderr == ""
    small = pop("status", "--json", "--limit", "2")
    assert len(json.loads(small.stdout)) == 2 and "jobs 1-2 of 503" in small.stderr
    for bad, said in (
        (["--limit", "0"], "--limit 0: list at least one job"),
        (["--offset", "-1"], "--offset -1"),
    ):
        refused = pop("status", "--json", *bad)
        assert refused.returncode == 2 and said in refused.stderr and refused.stdout == "", refused.stderr
    huge = pop("status", "--json", "--limit", "100000")  # a page is 500 at most: said, as for any page
    assert len(json.loads(huge.stdout)) == 500 and "jobs 1-500 of 503" in huge.stderr
