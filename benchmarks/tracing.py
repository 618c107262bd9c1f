"""What tracing costs: per LLM call, per stage, and how fast the runner ships spans to a collector.

Figures, each beside its anchor, from one run:
1. per LLM call: ``pop.chat`` with its span written (trace on) against the same call with no trace,
   interleaved, against the local provider server; and with the prompt captured (goal: under 2 ms);
   anchor: a span made and ended by hand with the OpenTelemetry SDK (BatchSpanProcessor + OTLP exporter),
   what a user instrumenting the call themselves would pay;
2. per stage: the runner's side of a stage span (id, status bookkeeping, the line written);
   end to end: a whole job (the hello pipeline) with OTLP export on (to a loopback
   collector) against export off, median of 5 each, interleaved;
3. spans per second from a job's spans.jsonl to a loopback OTLP/HTTP collector (a minimal one, so the
   collector is not what is measured), and to Arize Phoenix when ``.phoenix/`` has it.

    python benchmarks/tracing.py [--calls 300] [--spans 20000] [--jobs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark-not-a-real-key")
REPO = Path(__file__).resolve().parents[1]


class Collector(ThreadingHTTPServer):
    """Takes OTLP/HTTP posts and counts them: the cheapest collector there is."""

    def __init__(self) -> None:
        self.posts = 0
        self.bytes = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
                self.posts += 1
                self.bytes += len(body)
                handler.send_response(200)
                handler.send_header("Content-Type", "application/x-protobuf")
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args: object) -> None:
                return None

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def median_ms(times: list[float]) -> float:
    return statistics.median(times) * 1000


def per_call(n: int) -> None:
    from pop_nb.llm.client import Attribution, chat
    from pop_nb.llm.ledger import Ledger
    from pop_nb.testing.provider_server import ProviderServer
    from pop_nb.tracing.spans import new_span_id, new_trace_id, traceparent

    parent = traceparent(new_trace_id(), new_span_id())
    counter = iter(range(10**9))
    with ProviderServer() as server, tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(Path(tmp))
        ways = {
            "no trace": Attribution(job="bench", pipeline="b", task="t", stage="inference"),
            "trace on": Attribution(job="bench", pipeline="b", task="t", stage="inference", trace=parent),
            "trace + prompt": Attribution(
                job="bench", pipeline="b", task="t", stage="inference", trace=parent, capture_content=True
            ),
        }
        times: dict[str, list[float]] = {k: [] for k in ways}

        def call(who: Attribution) -> float:
            started = time.perf_counter()
            chat(
                f"question {next(counter)}",
                model="openai/gpt-4o-mini",
                api_base=server.openai_base,
                ledger=ledger,
                attribution=who,
                cache="off",
            )
            return time.perf_counter() - started

        for who in ways.values():  # warm every path
            for _ in range(10):
                call(who)
        for _ in range(n):  # interleaved, so drift hits every way alike
            for name, who in ways.items():
                times[name].append(call(who))
        spans = sum(1 for _ in (Path(tmp) / "spans.jsonl").open())
    off = median_ms(times["no trace"])
    print(f"1. per LLM call ({n} each, interleaved; {spans} spans written)")
    for name, took in times.items():
        extra = "" if name == "no trace" else f"  added {median_ms(took) - off:+.3f} ms"
        print(f"   pop.chat, {name:<15}: median {median_ms(took):7.3f} ms/call{extra}")
    print(f"   anchor, a span by hand with the OpenTelemetry SDK: {sdk_span_ms(n * 10):.3f} ms/span")


def sdk_span_ms(n: int) -> float:
    """A span started and ended with the SDK's tracer, batched to an OTLP exporter (never reached)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    collector = Collector()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces")))
    tracer = provider.get_tracer("bench")
    started = time.perf_counter()
    for i in range(n):
        with tracer.start_as_current_span("chat gpt-4o-mini") as span:
            span.set_attribute("gen_ai.usage.input_tokens", i)
            span.set_attribute("gen_ai.usage.output_tokens", i)
            span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
    took = (time.perf_counter() - started) / n * 1000
    provider.shutdown()
    collector.shutdown()
    return took


def per_stage(n: int) -> None:
    from pop_nb.models.status import JobStatus, StageRun, TaskStatus, now_iso
    from pop_nb.tracing.recorder import JobTracer

    with tempfile.TemporaryDirectory() as tmp:
        status = JobStatus(job_id="bench", pipeline="b", tasks={"t": TaskStatus()})
        tracer = JobTracer(Path(tmp), "b")
        tracer.begin(status)
        tracer.task_started("t", status.tasks["t"])
        times = []
        for _ in range(n):
            started = time.perf_counter()
            run = StageRun(stage="inference", state="running", started_at=now_iso())
            tracer.stage_started(status.tasks["t"], run)
            run.state, run.ended_at, run.notebook = "done", now_iso(), "tasks/t/04-inference.ipynb"
            tracer.stage_ended("t", run)
            times.append(time.perf_counter() - started)
    print(
        f"2. per stage: the runner's side of a stage span, median {median_ms(times) * 1000:.0f} us "
        f"({n} stages)"
    )


def per_job(jobs: int) -> None:
    """The hello pipeline (pop init's) with export to a loopback collector, against export off."""
    collector = Collector()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "pop_nb.cli", "init", str(root)], check=True, capture_output=True
        )
        seed = next((root / "pipelines" / "hello" / "seeds").glob("*.json"))
        took: dict[str, list[float]] = {"export off": [], "export on": []}
        base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        for i in range(jobs + 1):
            for name in took:
                env = dict(base, POP_ROOT=str(root))
                if name == "export on":
                    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.url
                job_id = f"bench-{name.split()[-1]}-{i}"
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pop_nb.cli",
                        "run",
                        "hello",
                        "--seed",
                        str(seed),
                        "--id",
                        job_id,
                        "--quiet",
                    ],
                    check=True,
                    capture_output=True,
                    env=env,
                    cwd=root,
                )
                st = json.loads(
                    (root / "pipeline-data" / "complete" / job_id / "tasks-status.json").read_text()
                )
                if i:  # the first of each warms the kernel server
                    seconds = datetime.fromisoformat(st["ended_at"]) - datetime.fromisoformat(
                        st["started_at"]
                    )
                    took[name].append(seconds.total_seconds())
        stages = sum(len(t["stages"]) for t in st["tasks"].values())
    off, on = (statistics.median(took[k]) * 1000 for k in ("export off", "export on"))
    print(
        f"   a whole job ({stages} stage runs), median of {jobs}: export off {off:.0f} ms, "
        f"export on {on:.0f} ms "
        f"-> {(on - off) / stages:+.1f} ms per stage (collector took {collector.posts} posts)"
    )
    collector.shutdown()


def shipping(n: int) -> None:
    from pop_nb.models.trace import SpanRecord
    from pop_nb.tracing.otlp import Shipper, Target
    from pop_nb.tracing.spans import new_span_id, new_trace_id, write_span

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        trace = new_trace_id()
        parent = new_span_id()
        now = time.time_ns()
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 100, "pop.cost_usd": 0.0001}
        for _ in range(n):
            write_span(
                folder,
                SpanRecord(
                    trace_id=trace,
                    span_id=new_span_id(),
                    parent_id=parent,
                    name="chat gpt-4o-mini",
                    kind="llm",
                    start_ns=now,
                    end_ns=now + 1000,
                    attributes=attrs,
                ),
            )
        targets = [("minimal loopback collector", Collector(), None)]
        phoenix = start_phoenix()
        if phoenix is not None:
            targets.append(("Arize Phoenix on loopback", None, phoenix))
        print(f"3. shipping {n} spans from spans.jsonl")
        for name, collector, proc in targets:
            url = collector.url if collector is not None else proc[1]
            (folder / ".spans-sent.json").unlink(missing_ok=True)
            shipper = Shipper(folder, Target(endpoint=f"{url}/v1/traces", timeout_s=30))
            started = time.perf_counter()
            shipper.ship()
            took = time.perf_counter() - started
            print(
                f"   to {name:<28}: {shipper.sent / took:9.0f} spans/s "
                f"({shipper.sent} sent, {shipper.dropped} dropped)"
            )
            if collector is not None:
                collector.shutdown()
            else:
                proc[0].terminate()
                proc[0].wait(20)


def start_phoenix() -> tuple[subprocess.Popen[bytes], str] | None:
    program = REPO / ".phoenix" / "bin" / "phoenix"
    if not program.exists() and shutil.which("phoenix") is None:
        print(
            "   (Arize Phoenix not measured: "
            "python3 -m venv .phoenix && .phoenix/bin/pip install arize-phoenix)"
        )
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    work = tempfile.mkdtemp()
    env = dict(
        os.environ,
        PHOENIX_WORKING_DIR=work,
        PHOENIX_PORT=str(port),
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_GRPC_PORT=str(port + 1),
        PHOENIX_TELEMETRY_ENABLED="false",
    )
    exe = str(program) if program.exists() else "phoenix"
    proc = subprocess.Popen([exe, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--spans", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=5)
    args = parser.parse_args()
    per_call(args.calls)
    per_stage(2000)
    per_job(args.jobs)
    shipping(args.spans)


if __name__ == "__main__":
    main()
