"""The JupyterLab side at scale: a real ``jupyter lab`` with pop-nb over N jobs (default 10,000).

1. ``GET /pop/api/jobs`` (the panel's first request: the 200 newest), cold (the server's first) and
   warm (median of 30), with a search, sorted as the jobs table sorts (cost, duration), and one job's
   file through ``/file`` (what Lab's ``pop-job:`` drive reads); against what a user would write
   instead: reading every job's ``tasks-status.json`` and sorting them (plain Python, one pass, no
   cache). Goal: <= 100 ms warm.
2. Event latency: from a line appended to a running job's ``events.jsonl`` (and its status rewritten)
   to the event arriving, (a) in a Python SSE client, (b) in the browser (headless chromium: a
   ``fetch`` stream in the Lab page, as the panel reads it). Median and p95. Goal: <= 250 ms.
3. The Pipelines panel's first paint in the browser with N jobs: from navigation start to the first job
   row, next to Lab's own shell appearing.

    python benchmarks/lab_server.py [--jobs 10000] [--events 100] [--no-browser]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from pop_nb.testing.lab import CHROMIUM, DRIVER, chromium, jupyter_lab

TOKEN = "pop-benchmark-token"


def generate(data: Path, n: int) -> Path:
    """``n`` finished jobs (a tenth failed) and one running job; returns the running job's folder."""
    from pop_nb.models.status import ErrorInfo, JobStatus, StageRun, TaskStatus, Totals
    from pop_nb.store.atomic import atomic_write_json

    t0 = "2026-11-20T10:00:00.000+00:00"
    for i in range(n):
        failed = i % 10 == 0
        place = "failed" if failed else "complete"
        job = f"bench-{i:06d}"
        stages = {
            s: StageRun(stage=s, state="done", started_at=t0, duration_ms=900, notebook=f"tasks/a/{s}.ipynb")
            for s in ("promptTemplating", "inference", "validateQuality")
        }
        status = JobStatus(
            job_id=job,
            pipeline=("content-generation", "ticket-triage")[i % 2],
            name=f"Job number {i}",
            state="failed" if failed else "done",
            created_at=f"2026-11-{1 + i % 28:02d}T{i % 24:02d}:00:00.000+00:00",
            started_at=t0,
            ended_at=t0,
            error=ErrorInfo(task="b", stage="parsing", type="JSONDecodeError", message="bad")
            if failed
            else None,
            tasks={
                "a": TaskStatus(state="done", stages=stages, usage=Totals(calls=2, cost_usd=0.002)),
                "b": TaskStatus(state="failed" if failed else "done"),
            },
            totals=Totals(calls=3, attempts=3, input_tokens=300, output_tokens=120, cost_usd=0.003),
        )
        status.refresh_progress()
        atomic_write_json(data / place / job / "tasks-status.json", status)
        (data / place / job / "events.jsonl").write_text('{"kind":"job","status":"created"}\n')
    live = data / "current" / "bench-live"
    status = JobStatus(
        job_id="bench-live",
        pipeline="content-generation",
        state="running",
        current_task="a",
        current_stage="inference",
        tasks={"a": TaskStatus(state="running")},
    )
    atomic_write_json(live / "tasks-status.json", status)
    (live / "events.jsonl").write_text('{"kind":"job","status":"created"}\n')
    return live


def naive_list(data: Path, limit: int) -> list[dict]:
    """What one would write without pop-nb's index: read every status, sort, keep the newest."""
    rows = []
    for place in ("current", "complete", "failed"):
        for entry in os.scandir(data / place):
            with open(os.path.join(entry.path, "tasks-status.json"), "rb") as fh:
                rows.append(json.load(fh))
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return rows[:limit]


def get_ms(url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = response.read()
    return (time.perf_counter() - started) * 1000, body


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sse_latency(url: str, live: Path, events: int) -> list[float]:
    """Append ``events`` lines one by one; time each until a Python SSE client has it."""
    received: dict[int, float] = {}
    ready = threading.Event()

    def listen() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", urlsplit(url).port, timeout=60)
        conn.request("GET", "/pop/api/events", headers={"Authorization": f"token {TOKEN}"})
        response = conn.getresponse()
        ready.set()
        buffer = b""
        while len(received) < events:
            chunk = response.read1(65536)
            if not chunk:
                return
            buffer += chunk
            while b"\n\n" in buffer:
                message, buffer = buffer.split(b"\n\n", 1)
                for line in message.split(b"\n"):
                    if line.startswith(b"data: "):
                        seq = json.loads(line[6:]).get("event", {}).get("seq")
                        if seq is not None:
                            received[seq] = time.time() * 1000

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(30)
    time.sleep(0.5)
    return latencies(live, range(events), received.get)


def latencies(live: Path, seqs: range, arrived: Callable[[int], float | None]) -> list[float]:
    """Append one event per ``seq`` to the running job's log and wait for it: ``arrived(seq)`` says when
    (epoch ms) the listener got it. Returns each event's latency in ms."""
    out = []
    for k in seqs:
        sent = time.time() * 1000
        with open(live / "events.jsonl", "a") as fh:
            fh.write(json.dumps({"kind": "stage", "task": "a", "stage": "inference", "seq": k}) + "\n")
        deadline = time.time() + 5
        while (got := arrived(k)) is None and time.time() < deadline:
            time.sleep(0.002)
        if got is not None:
            out.append(got - sent)
        time.sleep(0.02)
    return out


def browser_figures(url: str, live: Path, events: int) -> dict[str, float | list[float]] | None:
    if not (CHROMIUM and DRIVER):
        return None
    with chromium() as d:
        # marks taken in the page from its first moment: when Lab's shell and the first job row appear
        d.execute_cdp_cmd(
            "Page.addScriptToEvaluateOnNewDocument",
            {
                "source": "new MutationObserver((_, obs) => {"
                "  if (!window.__shell && document.querySelector('.jp-LabShell'))"
                "    window.__shell = performance.now();"
                "  if (!window.__rows && document.querySelector('#pop-pipelines .pop-JobRow')) {"
                "    window.__rows = performance.now(); obs.disconnect(); }"
                "}).observe(document, {childList: true, subtree: true});"
                # the panel open from the start, as for a user who keeps it open
                "const open = setInterval(() => { if (window.jupyterapp && document.querySelector("
                "'#pop-pipelines')) { window.jupyterapp.shell.activateById('pop-pipelines');"
                " clearInterval(open); } }, 5);"
            },
        )
        paints = []
        for _ in range(3):
            d.get(f"{url}/lab?token={TOKEN}")
            deadline, marks = time.time() + 90, None
            while time.time() < deadline and not marks:
                marks = d.execute_script(
                    "return window.__rows ? [window.__shell, window.__rows,"
                    " document.querySelectorAll('#pop-pipelines .pop-JobRow').length] : null"
                )
                time.sleep(0.05)
            if not marks:
                panel = d.execute_script("return document.querySelector('#pop-pipelines')?.innerText")
                probe = d.execute_async_script(
                    "const done = arguments[arguments.length - 1];"
                    "fetch('/pop/api/jobs?limit=2', {headers: {Authorization: 'token ' + arguments[0]}})"
                    ".then(r => r.text()).then(t => done(t.slice(0, 300)), e => done(String(e)))",
                    TOKEN,
                )
                raise SystemExit(f"the panel showed no job: {panel!r}; {probe}; {d.get_log('browser')[-5:]}")
            paints.append(marks)
        # event latency into the page: a fetch stream, as the panel reads it; the page's clock is the
        # same machine's, so Date.now() there and time.time() here compare
        d.execute_script(
            """
            window.__got = {};
            const headers = {Authorization: 'token ' + arguments[0]};
            fetch('/pop/api/events', {headers}).then(async r => {
              const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
              let buf = '';
              for (;;) {
                const {value, done} = await reader.read();
                if (done) return;
                buf += value;
                let i;
                while ((i = buf.indexOf('\\n\\n')) >= 0) {
                  const msg = buf.slice(0, i); buf = buf.slice(i + 2);
                  const line = msg.split('\\n').find(l => l.startsWith('data: '));
                  const seq = line ? JSON.parse(line.slice(6)).event?.seq : undefined;
                  if (seq !== undefined) window.__got[seq] = Date.now();
                }
              }
            });
            """,
            TOKEN,
        )
        time.sleep(1)
        lat = latencies(
            live,
            range(100_000, 100_000 + events),
            lambda k: d.execute_script("return window.__got[arguments[0]] ?? null", k),
        )
        return {
            "shell_ms": statistics.median(p[0] for p in paints),
            "rows_ms": statistics.median(p[1] for p in paints),
            "rows": paints[0][2],
            "latency": lat,
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        (root / "pipelines").mkdir(parents=True)
        data = root / "pipeline-data"
        started = time.perf_counter()
        live = generate(data, args.jobs)
        print(f"{args.jobs} jobs written in {time.perf_counter() - started:.1f} s")

        with jupyter_lab(root, Path(tmp) / "lab", TOKEN) as url:
            api = f"{url}/pop/api/jobs?token={TOKEN}&limit=200"
            cold, body = get_ms(api)
            page = json.loads(body)
            warm = [get_ms(api)[0] for _ in range(30)]
            search = [get_ms(api + "&search=number+77")[0] for _ in range(10)]
            by_cost = [get_ms(api + "&sort=-cost")[0] for _ in range(10)]  # the jobs table's sort
            by_time = [get_ms(api + "&sort=-duration")[0] for _ in range(10)]
            record = f"{url}/pop/api/jobs/{live.name}/file?token={TOKEN}&path=tasks-status.json"
            files = [get_ms(record)[0] for _ in range(30)]  # a job's file, read through the pop-job: drive
            naive = []
            for _ in range(3):
                t = time.perf_counter()
                naive_list(data, 200)
                naive.append((time.perf_counter() - t) * 1000)
            print(f"\nGET /pop/api/jobs?limit=200 over {page['total']} jobs (goal: <= 100 ms warm)")
            print(f"  cold (server's first)   {cold:8.1f} ms")
            print(f"  warm median / p95       {statistics.median(warm):8.1f} / {pct(warm, 0.95):.1f} ms")
            print(f"  warm with a search      {statistics.median(search):8.1f} ms")
            print(f"  warm sorted by cost     {statistics.median(by_cost):8.1f} ms")
            print(f"  warm sorted by duration {statistics.median(by_time):8.1f} ms")
            print(f"  a job's file (record)   {statistics.median(files):8.1f} ms median of 30")
            print(
                f"  naive read-all-and-sort {statistics.median(naive):8.1f} ms  "
                f"(warm API is {statistics.median(naive) / statistics.median(warm):.1f}x faster)"
            )

            lat = sse_latency(url, live, args.events)
            print(f"\nevent latency, file append -> Python SSE client, {len(lat)} events (goal <= 250 ms)")
            median, p95 = statistics.median(lat), pct(lat, 0.95)
            print(f"  median {median:.1f} ms, p95 {p95:.1f} ms, max {max(lat):.1f} ms")

            if not args.no_browser:
                figures = browser_figures(url, live, args.events)
                if figures is None:
                    print("\n(browser figures skipped: no chromium/chromedriver)")
                else:
                    blat = figures["latency"]
                    print(f"\nevent latency, file append -> the Lab page (fetch stream), {len(blat)} events")
                    print(f"  median {statistics.median(blat):.1f} ms, p95 {pct(blat, 0.95):.1f} ms")
                    print(f"\nfirst paint with {args.jobs} jobs (median of 3 loads, from navigation start)")
                    print(
                        f"  Lab shell {figures['shell_ms']:.0f} ms; Pipelines panel's first job row "
                        f"{figures['rows_ms']:.0f} ms ({figures['rows']} rows shown)"
                    )


if __name__ == "__main__":
    main()
