"""A secret is masked however it is cut: across writes to a log, across a cell's stream outputs."""

from __future__ import annotations

import io
import sys
import traceback

import nbformat
import pytest

from pop_nb.redaction import MASK, RedactingWriter, masked_output, redact_notebook

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


def test_what_a_runner_prints_is_masked_tracebacks_too(capsys: pytest.CaptureFixture[str]) -> None:
    """A runner's stdout and stderr (its runner.log) inside :func:`masked_output`."""
    with masked_output():
        print(f"the key {KEY}")
        sys.stderr.write(KEY[:5])
        sys.stderr.flush()
        sys.stderr.write(KEY[5:] + " in two pieces\n")
        try:
            raise ValueError(f"refused {KEY}")
        except ValueError:
            traceback.print_exc()
        assert sys.stdout.isatty() is False  # what else a stream is asked: the wrapped one's
        print("ends with sk-te", end="")  # held back as the start of a key, written on the way out
    out, err = capsys.readouterr()
    assert KEY not in out + err
    assert out == f"the key {MASK}\nends with sk-te"
    assert f"{MASK} in two pieces" in err and f"ValueError: refused {MASK}" in err
    assert not isinstance(sys.stdout, RedactingWriter)  # put back


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
    from pop_nb.redaction import redact

    monkeypatch.setenv("POP_BROKER_URL", "redis://:broker-pass-1234@10.0.0.5:6379/0")
    monkeypatch.setenv("HOME_PAGE", "https://example.org/a@b")  # an @ but no password: nothing to hide
    assert redact("connect to redis://:broker-pass-1234@10.0.0.5") == f"connect to redis://:{MASK}@10.0.0.5"
    assert redact("https://example.org/a@b") == "https://example.org/a@b"


ODD = 'a"b\\c-wörd-12345'  # a secret JSON has to escape


@pytest.mark.parametrize("ascii_only", [True, False])
def test_json_stays_json_and_loses_the_secret_however_it_is_escaped(
    monkeypatch: pytest.MonkeyPatch, ascii_only: bool
) -> None:
    import json

    from pop_nb.redaction import redact_bytes

    monkeypatch.setenv("DB_PASSWORD", ODD)
    doc = {"k": KEY, KEY: [ODD, {"x": f"in {ODD} text"}], "n": 3, "ok": True}
    for compact in (False, True):
        raw = json.dumps(doc, ensure_ascii=ascii_only, indent=None if compact else 2).encode()
        out = redact_bytes(raw, compact=compact)
        assert json.loads(out) == {"k": MASK, MASK: [MASK, {"x": f"in {MASK} text"}], "n": 3, "ok": True}
        assert (b"\n" in out.strip()) is not compact  # JSON lines stay one line
        for form in (KEY, ODD, json.dumps(ODD)[1:-1], json.dumps(ODD, ensure_ascii=False)[1:-1]):
            assert form.encode() not in out


def test_bytes_without_a_secret_are_the_same_object_and_binary_is_left_alone() -> None:
    from pop_nb.redaction import redact_bytes

    clean = b'{"a": 1}\n'
    assert redact_bytes(clean) is clean
    binary = b"\xff\xfe" + KEY.encode()
    assert redact_bytes(binary) == binary
    assert redact_bytes(f"plain {KEY} text".encode()) == f"plain {MASK} text".encode()


def test_a_secret_of_digits_written_as_a_json_number_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from pop_nb.redaction import redact_bytes

    monkeypatch.setenv("BANK_PIN_SECRET", "987654321")
    assert json.loads(redact_bytes(b'{"pin": 987654321, "other": 12}')) == {"pin": MASK, "other": 12}


def test_a_tracing_backends_key_in_the_otlp_headers_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from pop_nb.redaction import redact

    monkeypatch.setenv(
        "OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Basic%20cGstbGYtY2FuYXJ5OnNrLWxm,x-tenant=short"
    )
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api_key=phx-canary-91f3")
    said = redact(
        "sent Basic cGstbGYtY2FuYXJ5OnNrLWxm and cGstbGYtY2FuYXJ5OnNrLWxm with phx-canary-91f3 to short"
    )
    assert "cGstbGYtY2FuYXJ5OnNrLWxm" not in said and "phx-canary-91f3" not in said
    assert said.endswith("to short"), "a value under 8 characters is not taken for a key"
