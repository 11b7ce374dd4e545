"""Where a job runs, and why: the decision is journaled with the job and shown to the user."""

from __future__ import annotations

from dataclasses import dataclass

AUTO = "auto"  # a spec's or the command line's "let Squall choose"


@dataclass(frozen=True)
class Placement:
    requested: str  # what was asked: a site's name, or "auto"
    site: str
    reason: str

    def to_dict(self) -> dict:
        return {"requested": self.requested, "site": self.site, "reason": self.reason}


def place(command_line: str | None, spec_site: str) -> Placement:
    """The site a job goes to: ``--site`` overrides the spec's ``site``; ``auto`` picks one and says why."""
    requested = command_line or spec_site
    if requested != AUTO:
        source = "--site" if command_line else "the spec's site"
        return Placement(requested, requested, f"named by {source}")
    return Placement(AUTO, "local", "auto chooses the built-in local site: no site has prices or queue "
                                    "estimates to rank by yet; name one with --site to run elsewhere")
