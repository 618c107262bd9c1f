"""Products (text, json, csv, zip with a manifest), safe relative paths, and the codegen helpers."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest

from pop_nb import codegen
from pop_nb.models.pipeline import ProductSpec
from pop_nb.store import products
from pop_nb.store.paths import inside, path_problem


def spec(path: str, **kw: str) -> ProductSpec:
    return ProductSpec.model_validate({"path": path, "from": "t", **kw})


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../up.py", "'..'"),
        ("a/../../b", "'..'"),
        ("/etc/passwd", "absolute"),
        ("C:/x.py", "absolute"),
        ("a\\..\\b", "backslash"),
        ("a\x00b", "control character"),
        ("", "empty"),
        ("x" * 300, "255 bytes"),
    ],
)
def test_unsafe_relative_paths_are_named(name: str, problem: str) -> None:
    found = path_problem(name)
    assert found is not None and problem in found


def test_a_symlink_inside_the_folder_cannot_lead_out(tmp_path: Path) -> None:
    base = tmp_path / "files"
    base.mkdir()
    (base / "out").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="through a symlink"):
        inside(base, "out/secret.txt", "artifact")
    assert inside(base, "pkg/mod.py", "artifact") == (base / "pkg/mod.py").resolve()


def test_formats_come_from_the_suffix_unless_given() -> None:
    assert [spec(p).kind for p in ("a.md", "a.JSON", "a.csv", "a.zip", "noext")] == [
        "text",
        "json",
        "csv",
        "zip",
        "text",
    ]
    assert spec("a.txt", format="json").kind == "json"


def test_csv_from_objects_keeps_column_order_and_defuses_formulas() -> None:
    rows = [{"name": "a", "score": 1}, {"name": '=HYPERLINK("http://x")', "extra": {"k": [1]}}]
    text = products.render(rows, spec("r.csv")).decode()
    assert text.splitlines() == [
        "name,score,extra",
        "a,1,",
        '"\'=HYPERLINK(""http://x"")",,"{""k"": [1]}"',
    ]
    assert products.render([[1, 2], ["-3", 4]], spec("r.csv")).decode() == "1,2\n'-3,4\n"


@pytest.mark.parametrize(
    ("value", "path", "message"),
    [
        ({"a": 1}, "r.txt", "format text needs a string"),
        ({"a": 1}, "r.csv", "format csv needs a list"),
        ([{"a": 1}, [1]], "r.csv", "mix objects and lists"),
    ],
)
def test_a_value_that_does_not_fit_its_format_is_refused_by_name(
    value: object, path: str, message: str
) -> None:
    with pytest.raises(products.ProductError, match=message) as err:
        products.render(value, spec(path))
    assert path in str(err.value) and "'t'" in str(err.value)


def test_select_follows_a_dotted_key_and_names_the_missing_part() -> None:
    assert products.select({"a": {"b": [1]}}, spec("x.json", key="a.b")) == [1]
    with pytest.raises(products.ProductError, match="no key 'c'"):
        products.select({"a": {"b": 1}}, spec("x.json", key="a.c"))


def test_a_zip_holds_the_files_and_a_manifest_that_matches_them(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg/mod.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_bytes("é\n".encode())
    (tmp_path / ".README.md.abc.tmp").write_text("torn")  # an atomic write that never finished
    blob = products.pack(tmp_path, spec("code.zip"))
    archive = zipfile.ZipFile(io.BytesIO(blob))
    manifest = json.loads(archive.read(products.MANIFEST))["files"]
    assert [m["file"] for m in manifest] == ["README.md", "pkg/mod.py"]
    for entry in manifest:
        data = archive.read(entry["file"])
        assert entry["size"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert sorted(archive.namelist()) == sorted(["README.md", "pkg/mod.py", products.MANIFEST])
    os.utime(tmp_path / "README.md", (0, 0))
    assert products.pack(tmp_path, spec("code.zip")) == blob  # the same files make the same bytes


def test_a_zip_refuses_symlinks_an_empty_folder_and_a_manifest_name(tmp_path: Path) -> None:
    with pytest.raises(products.ProductError, match="wrote no files"):
        products.pack(tmp_path / "none", spec("code.zip"))
    (tmp_path / "link").symlink_to("/etc/hostname")
    with pytest.raises(products.ProductError, match="symlink"):
        products.pack(tmp_path, spec("code.zip"))
    (tmp_path / "link").unlink()
    (tmp_path / products.MANIFEST).write_text("{}")
    with pytest.raises(products.ProductError, match="a name the zip keeps"):
        products.pack(tmp_path, spec("code.zip"))


def test_check_files_names_each_bad_entry() -> None:
    found = codegen.check_files(
        [
            {"path": "ok.py", "content": "x = 1"},
            {"path": "../../escape.py", "content": ""},
            {"path": "OK.py", "content": ""},
            {"path": "ok.py", "content": ""},
            {"path": "bin.py", "content": 3},
            "nope",
        ]
    )
    assert found == [
        "files[1].path '../../escape.py' goes up with '..'; use a relative path like 'pkg/module.py'",
        "files[2].path 'OK.py' is already used by 'ok.py'",
        "files[3].path 'ok.py' is already used by 'ok.py'",
        "files[4] needs a path and a text content",
        "files[5] needs a path and a text content",
    ]
    assert codegen.check_files([]) and codegen.check_files({"path": "x"})


def test_generated_tests_run_apart_without_secrets_and_are_killed_when_they_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEMO_API_KEY", "sk-test-must-not-leak-0123456789")
    leaky = (
        "import os, unittest\nclass T(unittest.TestCase):\n    def test_env(self):\n"
        "        print(sorted(os.environ))\n        print('sk-test-must-not-leak-0123456789')\n"
        "        self.assertNotIn('DEMO_API_KEY', os.environ)\n"
    )
    run = codegen.run_tests([{"path": "test_env.py", "content": leaky}])
    assert run.ok, run.output
    assert "sk-test-must-not-leak" not in run.output and "[REDACTED]" in run.output

    failing = "import unittest\nclass T(unittest.TestCase):\n    def test_no(self):\n"
    failing += "        self.assertEqual(1, 2)\n"
    run = codegen.run_tests([{"path": "test_no.py", "content": failing}])
    assert not run.ok and run.returncode == 1
    assert "FAIL: test_no" in run.summary and "AssertionError: 1 != 2" in run.summary

    none = codegen.run_tests([{"path": "mod.py", "content": "x = 1\n"}])
    assert not none.ok and "NO TESTS RAN" in none.output

    hang = (
        "import subprocess, sys, time, unittest\nclass T(unittest.TestCase):\n    def test_hang(self):\n"
        "        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "        time.sleep(600)\n"
    )
    run = codegen.run_tests([{"path": "test_hang.py", "content": hang}], timeout_s=2)
    assert run.timed_out and not run.ok and "did not finish in time" in run.summary


def test_a_job_lists_its_products_not_what_lab_keeps_beside_them(tmp_path: Path) -> None:
    from pop_nb.service.queries import _products

    made = tmp_path / "products"
    (made / "code").mkdir(parents=True)
    (made / "report.md").write_text("# r")
    (made / "code" / "main.py").write_text("print(1)")
    (made / ".ipynb_checkpoints").mkdir()
    (made / ".ipynb_checkpoints" / "report-checkpoint.md").write_text("# r")  # opened in Lab
    (made / "code" / ".hidden").write_text("x")
    assert _products(made) == ["code/main.py", "report.md"]
    assert _products(tmp_path / "none") == []
