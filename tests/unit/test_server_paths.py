"""How the server names a job's files for JupyterLab's document manager."""

from __future__ import annotations

from pathlib import Path

from pop_nb.server.handlers import lab_path


def test_a_path_under_the_server_root_is_relative_and_one_outside_is_none(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    (root / "data" / "complete" / "j1").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    assert lab_path(root, root / "data" / "complete" / "j1") == "data/complete/j1"
    assert lab_path(root, tmp_path / "elsewhere") is None
    assert lab_path(root, root / "data" / ".." / ".." / "elsewhere") is None  # no way out through ..
    (root / "link").symlink_to(tmp_path / "elsewhere")
    assert lab_path(root, root / "link") is None  # nor through a symlink
