"""Bulk uploads need OpenSSH and GNU tar on the controller; with a BSD tar the inputs go over SFTP."""

from __future__ import annotations

import shutil

import pytest

from squall.sites.transports import bulk_upload


@pytest.fixture
def path_with_tar(tmp_path, monkeypatch):
    """A PATH holding this machine's ssh and a ``tar`` that says what it is told to."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "ssh").symlink_to(shutil.which("ssh"))

    def tar_saying(version: str) -> None:
        script = folder / "tar"
        script.write_text(f"#!/bin/sh\necho '{version}'\n")
        script.chmod(0o755)
        monkeypatch.setenv("PATH", str(folder))
        bulk_upload.available.cache_clear()

    yield tar_saying
    bulk_upload.available.cache_clear()


def test_gnu_tar_is_used(path_with_tar):
    path_with_tar("tar (GNU tar) 1.34")
    assert bulk_upload.available()


def test_a_bsd_tar_is_not(path_with_tar):
    path_with_tar("bsdtar 3.5.3 - libarchive 3.5.3 zlib/1.2.11 liblzma/5.0.5 bz2lib/1.0.8")
    assert not bulk_upload.available()


def test_no_tar_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    bulk_upload.available.cache_clear()
    try:
        assert not bulk_upload.available()
    finally:
        bulk_upload.available.cache_clear()
