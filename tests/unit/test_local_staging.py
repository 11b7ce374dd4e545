"""Local staging: inputs copied by the kernel without being hashed; a later staging keeps the copies that
still stand (copy and source unchanged) and copies again whatever changed on either side."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import squall.sites.transports.local
import squall.transfer
from squall.sites.contract import Reporter
from squall.sites.transports.local import LocalHost
from squall.sites.transports.contract import ByteProgress, Upload
from squall.store import Store
from squall.transfer import SourceDigests, cached_sha256


@pytest.fixture
def bed(tmp_path, monkeypatch):
    """A local host, three source files, and a count of the files copied by each staging."""
    sources = tmp_path / "src"
    sources.mkdir()
    for index in range(3):
        (sources / f"f{index}").write_bytes(os.urandom(5000 + index))
    store = Store(tmp_path / "home")
    host = LocalHost("local", tmp_path / "work")
    job_dir = str(tmp_path / "work" / "squall-job")
    copied: list[str] = []
    copy = squall.sites.transports.local.copy_unchanged

    def counting(source, target, before=None):
        copied.append(Path(source).name)
        return copy(source, target, before)

    monkeypatch.setattr(squall.sites.transports.local, "copy_unchanged", counting)

    def stage() -> list[str]:
        copied.clear()
        uploads = [Upload(f"task-0/in/{p.name}", p, p.stat().st_size) for p in sorted(sources.iterdir())]
        digests = SourceDigests(store, [u.source for u in uploads])
        host.stage(job_dir, {}, uploads, digests, ByteProgress(Reporter(), sum(u.size for u in uploads)))
        return sorted(copied)

    yield sources, Path(job_dir) / "task-0" / "in", stage, store
    store.close()


def test_inputs_are_copied_exactly_and_never_hashed(bed, monkeypatch):
    sources, inputs, stage, _ = bed

    def no_hashing(path):
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr(squall.transfer, "sha256_file", no_hashing)
    assert stage() == ["f0", "f1", "f2"]
    for source in sources.iterdir():
        assert (inputs / source.name).read_bytes() == source.read_bytes()
    assert not list(inputs.glob(".*partial"))


def test_a_second_staging_keeps_every_copy_that_stands(bed):
    _, _, stage, _ = bed
    stage()
    assert stage() == []


def test_a_source_changed_since_is_copied_again(bed):
    sources, inputs, stage, _ = bed
    stage()
    (sources / "f1").write_bytes(b"new content")
    assert stage() == ["f1"]
    assert (inputs / "f1").read_bytes() == b"new content"


def test_a_copy_changed_in_the_job_folder_is_copied_again(bed):
    sources, inputs, stage, _ = bed
    stage()
    (inputs / "f2").write_bytes(b"tampered")
    assert stage() == ["f2"]
    assert (inputs / "f2").read_bytes() == (sources / "f2").read_bytes()


def test_a_touched_source_whose_digest_is_known_keeps_its_copy(bed):
    sources, _, stage, store = bed
    cached_sha256(store, [sources / "f0"])  # known before staging: the record carries it
    stage()
    os.utime(sources / "f0", ns=(1, 1))
    cached_sha256(store, [sources / "f0"])  # the same bytes, hashed again under the new mtime
    assert stage() == []


def test_a_touched_source_whose_digest_is_unknown_is_copied_again(bed):
    sources, _, stage, _ = bed
    stage()
    os.utime(sources / "f0", ns=(1, 1))
    assert stage() == ["f0"]
