"""``pop schedules [pause|resume NAME]``: each schedule's next slots and last outcomes."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from pop_nb.cli.common import load_settings

if TYPE_CHECKING:
    from pop_nb.models.schedule import ScheduleView


def cmd_schedules(args: argparse.Namespace) -> int:
    from pop_nb.service import schedules as service

    settings = load_settings()
    if args.action in ("pause", "resume"):
        if not args.name:
            raise SystemExit(f"pop schedules {args.action}: name the schedule (`pop schedules` lists them)")
        view = service.set_paused(settings, args.name, args.action == "pause")
        print(
            f"{view.name}: {'paused' if view.paused else 'active'}"
            + (f", next {view.next[0]}" if view.next else "")
        )
        return 0
    views = service.schedules(settings, upcoming=args.next, history=args.history)
    if args.json:
        import json

        print(json.dumps([v.model_dump(mode="json") for v in views], indent=2))
        return 0
    if not views:
        print(f"no schedules in {settings.root} (add `schedules:` to a pipeline.yaml, or a schedules.yaml)")
        return 0
    for view in views:
        print(render(view))
    return 0


def render(view: ScheduleView) -> str:
    state = "paused" if view.paused else "active"
    lines = [
        f"{view.name}  {view.pipeline}  '{view.cron}' {view.timezone}  {state}  overlap {view.overlap}, "
        f"catch_up {view.catch_up}  ({view.source})"
    ]
    if view.problem:
        lines.append(f"  cannot run: {view.problem}")
    if view.next:
        lines.append("  next: " + ", ".join(view.next))
    for slot in view.history:
        outcome = slot.action + (f" -> {slot.job} ({slot.state or 'not found'})" if slot.job else "")
        lines.append(f"  {slot.local}  {outcome}" + (f"  {slot.why}" if slot.why else ""))
    return "\n".join(lines)
