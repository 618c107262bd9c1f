"""``pop pipelines``, ``compile``, ``init``: the pipelines of a project."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pop_nb.cli.common import load_settings
from pop_nb.errors import PipelineError


def cmd_pipelines(args: argparse.Namespace) -> int:
    from pop_nb import service

    settings = load_settings()
    found = service.pipelines(settings, detail=args.json)
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in found], indent=2))
    elif not found:
        print(f"no pipelines under {settings.root / 'pipelines'}; `pop init` makes an example")
    for p in [] if args.json else found:
        print(f"{p.slug:<28} {len(p.tasks)} tasks  {p.description or p.error or ''}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from pop_nb.pipeline.compile import check_models, check_schedules, compile_file

    settings = load_settings()
    pipeline, problems = compile_file(settings.root, args.slug)
    if pipeline is not None:
        problems += check_models(pipeline, settings.prices) + check_schedules(pipeline, settings.root)
    explained: dict[str, Any] | None = None
    fresh = False
    if args.explain and pipeline is not None and not problems:
        from pop_nb.pipeline.explain import explain

        explained, fresh = explain(pipeline, settings.default_model, model=args.model)
    misaligned = bool(args.strict and explained is not None and not explained["aligned"])
    code = 1 if problems or misaligned else 0
    if args.json:
        body: dict[str, Any] = {
            "slug": args.slug,
            "ok": not problems,
            "problems": [p.as_dict() for p in problems],
        }
        if explained is not None:
            body["explanation"] = explained
        print(json.dumps(body, indent=2))
        return code
    if problems:
        print(PipelineError(args.slug, problems), file=sys.stderr)
        return 1
    assert pipeline is not None
    order = " -> ".join(pipeline.topological_order())
    print(f"ok: {args.slug} ({pipeline.file}), {len(pipeline.spec.tasks)} tasks: {order}")
    if explained is not None:
        from pop_nb.pipeline.explain import FILE, as_markdown

        print()
        print(as_markdown(explained), end="")
        how = f"{explained['model']}, ${explained['cost_usd']:.6f}" if fresh else "unchanged since: no call"
        print(f"\n(saved in {pipeline.dir / FILE}; {how})")
        if misaligned:
            print(f"pop: {args.slug} is misaligned (--strict): see the findings above", file=sys.stderr)
    return code


def cmd_init(args: argparse.Namespace) -> int:
    from pop_nb.scaffold import init_project

    created = init_project(args.dir)
    print(f'created {created}; try: cd {args.dir} && pop run hello --data \'{{"topic": "tidal power"}}\'')
    return 0
