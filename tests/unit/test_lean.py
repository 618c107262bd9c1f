"""jsonschema's costly format libraries: blocked in pop-nb's own processes; in any other process that
imports pop-nb (a user's kernel, the kernel server whose forks are users' kernels) the one that builds a
grammar is deferred until a check needs it; the others untouched in a user's kernel that runs ``%pop``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("rfc3987_syntax", "rfc3986_validator")),
    reason="jsonschema's format libraries are not installed",
)


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_deferred_format_library_is_not_loaded_until_a_check_needs_it_and_then_works() -> None:
    out = run_python(
        """
        import sys
        from pop_nb import _lean
        with _lean.deferred("rfc3987_syntax", "is_valid_syntax"):
            import jsonschema
        print("loaded at import:", "rfc3987_syntax" in sys.modules)
        checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
        validator = jsonschema.Draft202012Validator({"format": "iri"}, format_checker=checker)
        print("bad:", [e.message for e in validator.iter_errors("no iri has spaces")])
        print("good:", [e.message for e in validator.iter_errors("https://example.org/caf\u00e9")])
        import rfc3987_syntax
        print("real:", rfc3987_syntax.__file__.endswith("__init__.py"))
        """
    )
    assert "loaded at import: False" in out
    assert "bad: [\"'no iri has spaces' is not a 'iri'\"]" in out
    assert "good: []" in out
    assert "real: True" in out


def test_a_process_that_imports_pop_nb_builds_no_grammar_until_an_iri_is_checked() -> None:
    """``pop_nb.run`` from a fresh kernel compiled the pipeline, whose output schemas are checked with
    jsonschema: its import built rfc3987_syntax's grammar first (1-2 s, 3.4 s under load)."""
    out = run_python(
        """
        import sys
        import pop_nb
        import nbformat  # imports jsonschema, as compiling a pipeline does
        print("loaded at import:", "rfc3987_syntax" in sys.modules)
        import jsonschema
        checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
        validator = jsonschema.Draft202012Validator({"format": "iri"}, format_checker=checker)
        print("bad:", [e.message for e in validator.iter_errors("no iri has spaces")])
        import rfc3987_syntax
        print("real:", rfc3987_syntax.__file__.endswith("__init__.py"))
        print("finder left:", any(type(f).__module__ == "pop_nb._lean" for f in sys.meta_path))
        """
    )
    assert "loaded at import: False" in out
    assert "bad: [\"'no iri has spaces' is not a 'iri'\"]" in out
    assert "real: True" in out and "finder left: False" in out


def test_the_pop_command_blocks_format_libraries_and_pop_magic_in_a_users_kernel_does_not(tmp_path) -> None:
    probe = """
        import os, sys
        os.environ["POP_ROOT"] = {root!r}
        from pop_nb import cli
        {call}
        try:
            import rfc3986_validator
            print("import works")
        except ImportError:
            print("import fails")
        """
    as_command = run_python(probe.format(root=str(tmp_path), call='sys.argv = ["pop"]; cli.main()'))
    as_magic = run_python(probe.format(root=str(tmp_path), call='cli.main(["pipelines"])'))
    assert "import fails" in as_command
    assert "import works" in as_magic
