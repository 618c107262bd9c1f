"""``%pop`` parses like a user types it, in a real IPython shell."""

from __future__ import annotations

import pytest

from pop_nb.magics import parse_data


def ipython():
    """The test process's one terminal IPython shell (started by the first caller)."""
    from IPython.testing.globalipapp import get_ipython, start_ipython

    return start_ipython() or get_ipython()


def test_data_is_json_or_the_literal_ipython_made_of_it() -> None:
    assert parse_data('{"topic": "tidal power", "n": 2}') == {"topic": "tidal power", "n": 2}
    assert parse_data("{'topic': 'tidal power', 'n': 2}") == {"topic": "tidal power", "n": 2}
    with pytest.raises(ValueError, match="neither JSON nor a Python literal"):
        parse_data("{topic: }")


def test_magic_runs_status_and_costs_in_a_shell(project, capsys) -> None:
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(pop.seed['topic'])")]}})
    shell = ipython()
    shell.run_line_magic("load_ext", "pop_nb")
    job = shell.run_line_magic("pop", 'run tiny --data {"topic": "tidal power"} --id m1')
    assert job.state == "done" and job.outputs()["a"] == "tidal power"
    shell.run_line_magic("pop", "status")
    assert "m1" in capsys.readouterr().out
    shell.run_line_magic("pop", "costs --by model")
    assert "no LLM calls" in capsys.readouterr().out
    shell.run_line_magic("pop", "bogus")
    assert "usage: %pop run" in capsys.readouterr().out


def test_magic_run_in_a_terminal_prints_progress_and_the_outcome(project, capfd) -> None:
    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(1)")]}})
    shell = ipython()
    shell.run_line_magic("load_ext", "pop_nb")
    job = shell.run_line_magic("pop", "run tiny --id term-1")
    err = capfd.readouterr().err
    assert job.state == "done"
    assert "job term-1" in err and "done: job term-1" in err and "0 LLM calls" in err
