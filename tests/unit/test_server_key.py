"""Which kernel server a runner uses: a new one once what the old one preloaded has changed on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pop_nb.execution import forkserver


def key_now(preload: list[str]) -> str:
    forkserver._server_key.cache_clear()  # kept for the process: asked again, as a new process would
    return forkserver.server_key(preload)


def test_a_package_installed_upgraded_or_removed_means_another_kernel_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server started before ``pip install -U litellm`` has the old litellm in memory, and a daemon's
    jobs keep it from ever going idle: the key changes with the folders pip installs into."""
    site_packages = tmp_path / "site-packages"
    site_packages.mkdir()
    monkeypatch.setattr(forkserver, "install_folders", lambda: [str(site_packages)])
    before = key_now(["litellm"])
    assert key_now(["litellm"]) == before  # nothing changed: the same server
    for change in ("install", "upgrade", "remove"):
        if change == "install":
            (site_packages / "litellm-1.106.2.dist-info").mkdir()
        elif change == "upgrade":
            (site_packages / "litellm-1.106.2.dist-info").rename(site_packages / "litellm-1.107.0.dist-info")
        else:
            (site_packages / "litellm-1.107.0.dist-info").rmdir()
        stamp = site_packages.stat().st_mtime_ns + 1_000_000  # a clock tick later, as a real change
        os.utime(site_packages, ns=(stamp, stamp))
        after = key_now(["litellm"])
        assert after != before, change
        before = after
    forkserver._server_key.cache_clear()


def test_the_install_folders_are_this_interpreters() -> None:
    import psutil  # a dependency: installed where pip installs for this interpreter

    folders = forkserver.install_folders()
    assert any(Path(psutil.__file__).is_relative_to(folder) for folder in folders), folders
