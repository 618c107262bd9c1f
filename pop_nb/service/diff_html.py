"""A :class:`~pop_nb.service.diff.JobDiff` as one self-contained HTML page: inline style, no script, no
link that leaves the file, every value escaped; a user attaches it to a review."""

from __future__ import annotations

import html

from pop_nb.models.compare import Change, JobDiff, TaskDiff
from pop_nb.service.diff import money, shown, text_diff

# every rule is under .pop-diff: the same rules style the page and a diff shown in a notebook's output
STYLE = """
.pop-diff { font: 14px/1.45 system-ui, sans-serif; color: #1f2328; }
.pop-diff h1 { font-size: 1.3em; }
.pop-diff h2 { font-size: 1.1em; margin-top: 2em; border-bottom: 1px solid #d0d7de; }
.pop-diff .same, .pop-diff .money { color: #59636e; }
.pop-diff .money { font-weight: normal; font-size: .9em; }
.pop-diff pre { background: #f6f8fa; padding: .6em; overflow-x: auto; white-space: pre-wrap; }
.pop-diff .add { background: #dafbe1; display: block; }
.pop-diff .del { background: #ffebe9; display: block; }
.pop-diff .hunk { color: #8250df; display: block; }
.pop-diff table { border-collapse: collapse; }
.pop-diff td, .pop-diff th { border: 1px solid #d0d7de; padding: .25em .6em; vertical-align: top; }
.pop-diff th { text-align: left; }
.pop-diff td.before { background: #ffebe9; } .pop-diff td.after { background: #dafbe1; }
.pop-diff li.fixed { color: #1a7f37; } .pop-diff li.new { color: #cf222e; }
"""


POLICY = "default-src 'none'; style-src 'unsafe-inline'"


def page(diff: JobDiff) -> str:
    """The whole page of one diff."""
    return document(f"pop diff {diff.title}", [section(diff)])


def document(title: str, sections: list[str]) -> str:
    """A page holding ``sections`` (each from :func:`section`)."""
    e = html.escape
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        # no script may run, nothing may be fetched: the page is what it shows
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        f"<title>{e(title)}</title><style>body {{ margin: 2em auto; max-width: 70em; }}{STYLE}</style>"
        '</head>\n<body class="pop-diff">\n' + "\n".join(sections) + "\n</body></html>\n"
    )


def fragment(diff: JobDiff) -> str:
    """One diff with its style, for a notebook's output (the style touches nothing outside it)."""
    return f'<div class="pop-diff"><style>{STYLE}</style>{section(diff)}</div>'


def section(diff: JobDiff) -> str:
    """One diff: a heading, which tasks differ, then each task."""
    e = html.escape
    changed = [t for t in diff.tasks if not t.same]
    body = [f"<h1>pop diff {e(diff.title)}</h1>"]
    body.append(
        f"<p>{len(changed)} of {len(diff.tasks)} tasks differ"
        + (f": {e(', '.join(t.task for t in changed))}" if changed else "")
        + ".</p>"
    )
    body += [_task(t) for t in diff.tasks]
    return "\n".join(body)


def _task(t: TaskDiff) -> str:
    e = html.escape
    a, b = t.a, t.b
    # each amount in an element of its own: Lab typesets text between two "$" as TeX
    cost = money(a, b, "&rarr;", "<span class='pop-cost'>${:.6f}</span>".format)
    head = f'<h2>{e(t.task)} <span class="money">{cost}</span></h2>'
    if t.same:
        return head + '<p class="same">The same prompts, output and validation.</p>'
    parts = [head]
    if t.models_differ:
        parts.append(
            f"<p>Model: {e(', '.join(a.models) or '(none)')} &rarr; {e(', '.join(b.models) or '(none)')}</p>"
        )
    if t.prompt_diff:
        parts.append("<h3>Prompt</h3>" + _unified(t.prompt_diff[2:]))
    if t.changes:
        rows = "".join(_change(c) for c in t.changes)
        parts.append(
            f"<h3>Output</h3><table><tr><th>key</th><th>{e(a.label)}</th><th>{e(b.label)}</th></tr>"
            f"{rows}</table>"
        )
    errors = [f'<li class="fixed">fixed: <code>{e(x)}</code></li>' for x in t.fixed]
    errors += [f'<li class="new">new: <code>{e(x)}</code></li>' for x in t.new]
    if errors:
        parts.append("<h3>Validation</h3><ul>" + "".join(errors) + "</ul>")
    notebooks = [*a.notebooks, *(n for n in b.notebooks if n not in a.notebooks)]
    if notebooks:
        parts.append(
            "<h3>Stage notebooks</h3><ul>"
            + "".join(f"<li><code>{e(n)}</code></li>" for n in notebooks)
            + "</ul>"
        )
    return "\n".join(parts)


def _change(c: Change) -> str:
    e = html.escape
    where = e(c.path or "(the output)")
    long = text_diff(c.before, c.after) if c.kind == "changed" else []
    if long:
        return f'<tr><td>{where}</td><td colspan="2">{_unified(long)}</td></tr>'
    before = "" if c.kind == "added" else f"<pre>{e(shown(c.before))}</pre>"
    after = "" if c.kind == "removed" else f"<pre>{e(shown(c.after))}</pre>"
    return f'<tr><td>{where}</td><td class="before">{before}</td><td class="after">{after}</td></tr>'


def _unified(lines: list[str]) -> str:
    e = html.escape
    out = []
    for line in lines:
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1])
        out.append(f'<span class="{kind}">{e(line)}</span>' if kind else e(line) + "\n")
    return "<pre>" + "".join(out) + "</pre>"
