"""A secret is masked however it is cut: across writes to a log, across a cell's stream outputs."""

from __future__ import annotations

import io

import nbformat
import pytest

from pop_nb.llm.secrets import MASK, RedactingWriter, redact_notebook

KEY = "sk-test-4f8a2c9e1b7d3a6f5c0e"


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.mark.parametrize("cut", range(1, len(KEY)))
def test_a_log_never_holds_a_key_written_in_two_pieces(cut: int) -> None:
    out = io.StringIO()
    writer = RedactingWriter(out)
    writer.write("before " + KEY[:cut])
    writer.flush()  # what papermill does after every stream message
    writer.write(KEY[cut:] + " after\n")
    writer.close()
    assert out.getvalue() == f"before {MASK} after\n"


def test_a_log_keeps_text_that_only_looks_like_the_start_of_a_key() -> None:
    out = io.StringIO()
    writer = RedactingWriter(out)
    writer.write("prefix sk-te")
    assert out.getvalue() == "prefix "  # held back: it may be a key
    writer.write("a time\n")
    assert out.getvalue() == "prefix sk-tea time\n"
    writer.write("ends with sk-")
    writer.close()
    assert out.getvalue().endswith("ends with sk-")  # nothing is lost at the end


def test_three_pieces_and_two_streams_in_a_notebook() -> None:
    cell = nbformat.v4.new_code_cell("print(...)")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="key: " + KEY[:5]),
        nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
        nbformat.v4.new_output("stream", name="stdout", text=KEY[5:12]),
        nbformat.v4.new_output("stream", name="stdout", text=KEY[12:] + "\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "3"}, execution_count=1),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    redact_notebook(nb)
    texts = [o.get("text") for o in nb.cells[0].outputs]
    assert texts == [f"key: {MASK}\n", "a warning\n", None]
    assert KEY[5:12] not in nbformat.writes(nb) and KEY[12:] not in nbformat.writes(nb)


def test_stream_outputs_without_a_secret_are_left_as_they_were() -> None:
    cell = nbformat.v4.new_code_cell("print(...)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in ("a", "b")]
    nb = nbformat.v4.new_notebook(cells=[cell])
    redact_notebook(nb)
    assert [o.text for o in nb.cells[0].outputs] == ["a", "b"]


def test_a_password_inside_a_url_in_the_environment_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from pop_nb.llm.secrets import redact

    monkeypatch.setenv("POP_BROKER_URL", "redis://:broker-pass-1234@10.0.0.5:6379/0")
    monkeypatch.setenv("HOME_PAGE", "https://example.org/a@b")  # an @ but no password: nothing to hide
    assert redact("connect to redis://:broker-pass-1234@10.0.0.5") == f"connect to redis://:{MASK}@10.0.0.5"
    assert redact("https://example.org/a@b") == "https://example.org/a@b"
