"""``%pop`` parses like a user types it, in a real IPython shell."""

from __future__ import annotations

import pytest

from pop_nb.magics import parse_data


def test_data_is_json_or_the_literal_ipython_made_of_it() -> None:
    assert parse_data('{"topic": "tidal power", "n": 2}') == {"topic": "tidal power", "n": 2}
    assert parse_data("{'topic': 'tidal power', 'n': 2}") == {"topic": "tidal power", "n": 2}
    with pytest.raises(ValueError, match="neither JSON nor a Python literal"):
        parse_data("{topic: }")


def test_magic_runs_status_and_costs_in_a_shell(project, capsys) -> None:
    from IPython.testing.globalipapp import start_ipython

    project.pipeline("tiny", {"a": {"cells": [("inference", "pop.output(pop.seed['topic'])")]}})
    shell = start_ipython()
    shell.run_line_magic("load_ext", "pop_nb")
    job = shell.run_line_magic("pop", 'run tiny --data {"topic": "tidal power"} --id m1')
    assert job.state == "done" and job.outputs()["a"] == "tidal power"
    shell.run_line_magic("pop", "status")
    assert "m1" in capsys.readouterr().out
    shell.run_line_magic("pop", "costs --by model")
    assert "no LLM calls" in capsys.readouterr().out
    shell.run_line_magic("pop", "bogus")
    assert "usage: %pop run" in capsys.readouterr().out
