"""Checksummed copies: the digest is of the bytes copied, and nothing half-made is left."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest

import squall.transfer
from squall.errors import SquallError
from squall.transfer import copy_file


@pytest.mark.parametrize("size", [0, 1, 4095, 1 << 20, (3 << 20) + 7])
def test_copy_file_returns_the_copys_sha256_and_leaves_no_partial(tmp_path, size):
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    assert copy_file(tmp_path / "src", tmp_path / "dst") == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "dst").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "src"]


def test_a_copy_that_fails_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        copy_file(tmp_path / "absent", tmp_path / "dst")
    assert list(tmp_path.iterdir()) == []


def test_a_copy_interrupted_midway_leaves_nothing(tmp_path, monkeypatch):
    def copy_then_interrupt(reader, writer):
        writer.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(squall.transfer, "_kernel_copy", copy_then_interrupt)
    (tmp_path / "src").write_bytes(b"abc")
    with pytest.raises(KeyboardInterrupt):
        copy_file(tmp_path / "src", tmp_path / "dst")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_a_source_changed_between_hash_and_copy_is_refused_and_leaves_nothing(tmp_path, monkeypatch):
    copy = squall.transfer._kernel_copy

    def copy_while_the_source_grows(reader, writer):
        with open(reader.name, "ab") as handle:
            handle.write(b"more")
        return copy(reader, writer)

    monkeypatch.setattr(squall.transfer, "_kernel_copy", copy_while_the_source_grows)
    (tmp_path / "src").write_bytes(b"abc")
    with pytest.raises(SquallError, match="changed while it was being copied"):
        copy_file(tmp_path / "src", tmp_path / "dst")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def refusing(code):
    def copy_file_range(*args):
        raise OSError(code, os.strerror(code))
    return copy_file_range


@pytest.mark.parametrize("kernel_copy", [refusing(errno.EXDEV), refusing(errno.ENOSYS), lambda *args: 0],
                         ids=["another file system", "an old kernel", "nothing copied"])
def test_where_the_kernel_cannot_copy_the_file_is_copied_the_ordinary_way(tmp_path, monkeypatch, kernel_copy):
    monkeypatch.setattr(squall.transfer.os, "copy_file_range", kernel_copy)
    data = os.urandom((1 << 20) + 3)
    (tmp_path / "src").write_bytes(data)
    assert copy_file(tmp_path / "src", tmp_path / "dst") == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "dst").read_bytes() == data


def test_a_full_disk_during_the_kernel_copy_is_an_error_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(squall.transfer.os, "copy_file_range", refusing(errno.ENOSPC))
    (tmp_path / "src").write_bytes(b"abc")
    with pytest.raises(OSError, match="No space left"):
        copy_file(tmp_path / "src", tmp_path / "dst")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
