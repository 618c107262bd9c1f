"""What ``pop.chat`` adds to a bare ``litellm.completion``, against the same local provider server.

Both send the same chat to an OpenAI-protocol server on loopback (``pop_nb.testing.ProviderServer``);
pop's call also hashes the request, checks the budget, prices the answer, stores it in the job's
ledger and appends the usage row. Also: a ledger replay (a resumed job's identical call), the import
time of ``pop_nb`` with and without the LLM layer loaded, and a stage's first call (in its fresh kernel,
forked from the kernel server) against its second: what the server's warm-up leaves to every stage.

    python benchmarks/llm_overhead.py [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("OPENAI_API_KEY", "sk-benchmark-not-a-real-key")


_counter = iter(range(10**9))


def per_call_ms(fn, n: int, fresh: bool = True) -> list[float]:
    """Time ``n`` calls; ``fresh`` gives each a prompt never sent before (else 0..n-1 again)."""
    times = []
    for i in range(n):
        started = time.perf_counter()
        fn(next(_counter) if fresh else i)
        times.append((time.perf_counter() - started) * 1000)
    return times


def import_s(code: str, repeats: int = 5) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    n = parser.parse_args().calls

    from pop_nb.llm.budget import Budget
    from pop_nb.llm.client import Attribution, chat
    from pop_nb.llm.ledger import Ledger
    from pop_nb.llm.providers import load_litellm
    from pop_nb.testing.provider_server import ProviderServer

    litellm = load_litellm()
    model = "openai/gpt-4o-mini"
    with ProviderServer() as server, tempfile.TemporaryDirectory() as tmp:
        run = {"ledger": Ledger(Path(tmp))}  # one Ledger is one run of a stage
        who = Attribution(job="bench", pipeline="bench", task="t", stage="inference")

        def bare(i: int) -> None:
            litellm.completion(
                model=model,
                messages=[{"role": "user", "content": f"question {i}"}],
                api_base=server.openai_base,
                max_retries=0,
            )

        def pop(i: int) -> None:
            chat(
                f"question {i}",
                model=model,
                api_base=server.openai_base,
                ledger=run["ledger"],
                attribution=who,
                budget=Budget(job_usd=100.0),
            )

        for fn in (bare, pop):  # warm both paths (connection pools, first-call caches)
            per_call_ms(fn, 20)
        rounds: dict[str, list[float]] = {"litellm": [], "pop": []}
        for _ in range(3):  # interleave so drift affects both alike
            rounds["litellm"] += per_call_ms(bare, n // 3)
            rounds["pop"] += per_call_ms(pop, n // 3)
        before = len(server.requests)
        paid = [r.body["messages"][-1]["content"] for r in server.requests[-(n // 3) :]]
        run["ledger"] = Ledger(Path(tmp))  # the stage again, as a resume runs it
        replay = per_call_ms(lambda i: pop(int(paid[i].split()[-1])), n // 3, fresh=False)
        assert len(server.requests) == before, "a replay reached the server"
        requests_sent = len(server.requests)

    bare_ms = statistics.median(rounds["litellm"])
    pop_ms = statistics.median(rounds["pop"])
    replay_ms = statistics.median(replay)
    print(f"calls per path: {len(rounds['pop'])} (requests the server saw: {requests_sent})")
    print(f"bare litellm.completion : median {bare_ms:7.2f} ms/call")
    print(f"pop chat (ledger, budget): median {pop_ms:7.2f} ms/call  -> ratio {pop_ms / bare_ms:.2f}")
    print(f"pop chat, ledger replay  : median {replay_ms:7.2f} ms/call  -> ratio {replay_ms / bare_ms:.2f}")
    print(f"pop's added time per call: {pop_ms - bare_ms:+.2f} ms")

    first, second = first_calls(jobs=5)
    print(
        f"a stage's first pop.chat, in its fresh kernel (median of {len(first)} jobs): "
        f"{statistics.median(first):.1f} ms; its second: {statistics.median(second):.1f} ms"
    )

    plain = import_s("import pop_nb")
    with_llm = import_s("import pop_nb.llm.client as c; c.load_litellm()")
    print(f"import pop_nb                 : {plain:.2f} s")
    print(f"import pop_nb + the LLM layer : {with_llm:.2f} s  (litellm itself is the difference)")


FIRST_CALLS = """import time
t0 = time.perf_counter()
pop.chat("first question")
t1 = time.perf_counter()
pop.chat("second question")
pop.output({"first_ms": (t1 - t0) * 1000, "second_ms": (time.perf_counter() - t1) * 1000})
"""


def first_calls(jobs: int) -> tuple[list[float], list[float]]:
    """Each of ``jobs`` jobs (after one that starts the kernel server): one stage that calls the local
    OpenAI-protocol server twice; the time of each call, measured in the stage."""
    import nbformat
    import yaml

    import pop_nb
    from pop_nb.testing.provider_server import ProviderServer

    first, second = [], []
    with ProviderServer() as server, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "pipelines" / "first-call"
        cells = [("parameters", "pop_job_dir = None"), (None, "from pop_nb import task as pop"),
                 ("inference", FIRST_CALLS)]  # fmt: skip
        nb = nbformat.v4.new_notebook()
        for tag, source in cells:
            cell = nbformat.v4.new_code_cell(source)
            if tag:
                cell.metadata["tags"] = [tag]
            nb.cells.append(cell)
        (folder / "tasks").mkdir(parents=True)
        nbformat.write(nb, folder / "tasks" / "ask.ipynb")
        spec = {
            "name": "first-call",
            "llm": {"model": "openai/gpt-4o-mini", "api_base": server.openai_base, "cache": "off"},
            "tasks": {"ask": {"notebook": "tasks/ask.ipynb"}},
        }
        (folder / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        os.environ["POP_DATA_DIR"] = str(root / "pipeline-data")
        for n in range(jobs + 1):
            job = pop_nb.run("first-call", {}, root=root, job_id=f"first-{n}")
            assert job.status.state == "done", job.status.error
            times = json.loads((job.path / "tasks" / "ask" / "outputs" / "inference.json").read_text())
            if n:  # the first job waited for the kernel server to start
                first.append(times["first_ms"])
                second.append(times["second_ms"])
    return first, second


if __name__ == "__main__":
    main()
