"""Job images shipped as archive files next to the spec (``image: oci-archive:FILE`` or
``docker-archive:FILE``), for sites that reach no registry.

Each site loads an archive once: the runtime's ``image`` call keeps the image id under the archive's sha256
in the site's image folder and reuses it while the engine still holds that image; a host that already has
an exact copy of the archive is not sent it again (the same digest check as inputs). Only podman and docker
load archives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from squall.errors import InvalidInput, Refused, SquallError
from squall.job_types import JobPlan
from squall.store import Store
from squall.transfer import cached_sha256

ENGINES = ("podman", "docker")


@dataclass(frozen=True)
class ImageArchive:
    path: Path
    digest: str
    size: int

    @property
    def file_name(self) -> str:
        return f"sha256-{self.digest}.tar"


def image_archive(plan: JobPlan, store: Store) -> ImageArchive | None:
    """The job's image archive with its digest; None when the image is a plain reference."""
    if not plan.spec.image_archive:
        return None
    path = (plan.spec_dir / plan.spec.image_archive).resolve()
    if not path.is_file():  # a resumed job whose archive was removed since
        raise InvalidInput(f"image: archive {str(path)!r} is gone")
    return ImageArchive(path, cached_sha256(store, [path])[path], path.stat().st_size)


def archive_engine(site: str, asked: str, available: list[str]) -> str:
    """The engine that loads an archive: the spec's own, else the site's first podman or docker."""
    engines = [engine for engine in available if engine in ENGINES]
    if asked in ENGINES and asked in available:
        return asked
    if asked == "auto" and engines:
        return engines[0]
    raise Refused(f"runtime: site {site!r} has {available or 'no container runtime'}; an image archive needs "
                  f"{asked if asked in ENGINES else 'podman or docker'}",
                  hint="install podman at the site (and list it in squall_container_runtimes)")


def loaded_image(answer: dict, where: str) -> str:
    """The image id from the runtime's ``image`` answer."""
    if "image_id" not in answer:
        raise SquallError(f"{where}: cannot load the job's image archive: {answer.get('error', answer)}")
    return answer["image_id"]
