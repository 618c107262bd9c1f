"""The dashboard's Pipelines tab: each pipeline's description, what ``pop compile --explain`` says it is
for (intention, verdict, findings) and its architecture, written from the definition."""

from __future__ import annotations

import html
import re

from pop_nb.models.api import PipelineInfo
from pop_nb.widgets.theme import MUTED, STATE

_INLINE = re.compile(r"\*\*([^*]+)\*\*|`([^`]+)`")
_NUMBER = re.compile(r"^\d+\.\s*")


def inline(text: str) -> str:
    """A line of the explanation's Markdown as HTML: bold and code only, everything else escaped."""
    out, last = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[last : m.start()]))
        out.append(f"<b>{html.escape(m[1])}</b>" if m[1] else f"<code>{html.escape(m[2])}</code>")
        last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


SEVERITY = {"error": STATE["failed"], "warning": STATE["waiting"], "info": STATE["running"]}


def render_pipeline(info: PipelineInfo) -> str:
    """One pipeline as HTML (all of its text escaped: it comes from files and from a model)."""
    head = f"<h3 style='margin:4px 0'>{html.escape(info.slug)}</h3>"
    if info.error:
        return head + f"<div style='color:{STATE['failed']}'>does not load: {html.escape(info.error)}</div>"
    parts = [head, f"<div style='color:{MUTED}'>{html.escape(info.description)}</div>"]
    explained = info.explanation
    if explained is None:
        parts.append(
            "<p><i>Not explained yet:</i> run <code>pop compile "
            f"{html.escape(info.slug)} --explain</code> for its intention and whether its design serves "
            "it.</p>"
        )
    else:
        verdict = "aligned" if explained.aligned else "not aligned"
        colour = STATE["done"] if explained.aligned else STATE["failed"]
        parts.append(
            f"<h4 style='margin:8px 0 2px'>Intention · <span style='color:{colour}'>{verdict}</span></h4>"
        )
        paragraphs = [p for p in re.split(r"\n\s*\n", explained.intention) if p.strip()]
        parts += [f"<p style='margin:4px 0'>{inline(' '.join(p.split()))}</p>" for p in paragraphs]
    parts.append("<h4 style='margin:8px 0 2px'>Architecture</h4><ol style='margin:0'>")
    parts += [f"<li>{inline(_NUMBER.sub('', step))}</li>" for step in info.architecture]
    parts.append("</ol>")
    if explained is not None and explained.findings:
        parts.append("<h4 style='margin:8px 0 2px'>Findings</h4><ul style='margin:0'>")
        for f in explained.findings:
            colour = SEVERITY.get(f.severity, MUTED)
            fix = f" <span style='color:{MUTED}'>Fix: {html.escape(f.fix)}</span>" if f.fix else ""
            severity = f"<b style='color:{colour}'>{html.escape(f.severity)}</b>"
            parts.append(f"<li>{severity} {html.escape(f.finding)}{fix}</li>")
        parts.append("</ul>")
    if explained is not None:
        parts.append(
            f"<div style='color:{MUTED};margin-top:6px'>explained by {html.escape(explained.model)}</div>"
        )
    return "".join(parts)
