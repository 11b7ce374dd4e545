"""Checksummed copies: the digest is of the bytes at the target, and nothing half-made is left."""

from __future__ import annotations

import hashlib
import os

import pytest

from squall.transfer import copy_file


@pytest.mark.parametrize("size", [0, 1, 4095, 1 << 20, (3 << 20) + 7])
def test_copy_file_returns_the_copys_sha256_and_leaves_no_partial(tmp_path, size):
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    assert copy_file(tmp_path / "src", tmp_path / "dst") == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "dst").read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "src"]


def test_a_known_digest_is_passed_through_not_recomputed(tmp_path):
    (tmp_path / "src").write_bytes(b"abc")
    assert copy_file(tmp_path / "src", tmp_path / "dst", "f" * 64) == "f" * 64


def test_a_copy_that_fails_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError):
        copy_file(tmp_path / "absent", tmp_path / "dst")
    assert list(tmp_path.iterdir()) == []


def test_a_copy_interrupted_between_buffers_leaves_nothing(tmp_path, monkeypatch):
    import squall.transfer

    class InterruptedDigest:
        calls = 0

        def update(self, data):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt

    monkeypatch.setattr(squall.transfer.hashlib, "sha256", InterruptedDigest)
    (tmp_path / "src").write_bytes(os.urandom(3 * squall.transfer.COPY_BUFFER))
    with pytest.raises(KeyboardInterrupt):
        copy_file(tmp_path / "src", tmp_path / "dst")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
