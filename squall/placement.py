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


def place(command_line: str | None, spec_site: str | None, default: str = "local",
          default_source: str = "default") -> Placement:
    """The site a job goes to: ``--site``, else the spec's ``site``, else the user's default (config file or
    ``$SQUALL_SITE``); ``auto`` picks one and says why."""
    requested, source = next((value, source) for value, source in (
        (command_line, "--site"), (spec_site, "the spec's site"), (default, default_source)) if value)
    if requested != AUTO:
        return Placement(requested, requested, f"named by {source}")
    return Placement(AUTO, "local", "auto chooses the built-in local site: no site has prices or queue "
                                    "estimates to rank by yet; name one with --site to run elsewhere")
