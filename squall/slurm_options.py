"""The Slurm options a centre may require of a job: account, QoS, constraint, reservation, a few extra
``sbatch`` options from an allow-list, and environment set-up lines (``module load openmpi/4``).

Every value is checked against a strict pattern before it reaches a batch
script: directives take no shell quoting, so a value that could end the line
or add an option is refused (exit 2, naming the field). Options outside the
allow-list — anything that would move the job's files, its environment, its
identity or its array (``--output``, ``--export``, ``--chdir``, ``--comment``,
``--uid``, ``--wrap``...) — are refused the same way. Set-up lines are split
into words like a shell would and written back with every word quoted, so
``$(...)``, ``;`` or backticks in them stay literal arguments.
"""

from __future__ import annotations

import re
import shlex
from typing import Annotated

from pydantic import AfterValidator, Field

from squall.validation import StrictModel

NAME = r"^[A-Za-z0-9_.+-]{1,64}$"  # accounts, QoS and reservations as sacctmgr/scontrol name them
CONSTRAINT = r"^[A-Za-z0-9_&|!*\[\]():,.@-]{1,256}$"  # features with Slurm's operators, no spaces or quotes
COMMAND_WORD = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+-]*$")
ENV_NAME = r"^[A-Z_][A-Z0-9_]{0,63}$"

# option -> the pattern its value must match (None: a flag, no value)
ALLOWED_OPTIONS: dict[str, re.Pattern | None] = {
    "--exclusive": None,
    "--requeue": None,
    "--no-requeue": None,
    "--hint": re.compile(r"^(compute_bound|memory_bound|multithread|nomultithread)$"),
    "--licenses": re.compile(r"^[A-Za-z0-9_@:.,-]{1,256}$"),
    "--mail-type": re.compile(r"^(NONE|BEGIN|END|FAIL|REQUEUE|ALL|INVALID_DEPEND|STAGE_OUT|TIME_LIMIT(_\d{2})?"
                              r"|ARRAY_TASKS)(,(BEGIN|END|FAIL|REQUEUE|ALL|TIME_LIMIT(_\d{2})?|ARRAY_TASKS))*$"),
    "--threads-per-core": re.compile(r"^\d{1,2}$"),
    "--cpu-freq": re.compile(r"^[A-Za-z0-9:-]{1,64}$"),
    "--gres-flags": re.compile(r"^(enforce-binding|disable-binding)$"),
    "--switches": re.compile(r"^\d{1,4}(@\d{1,4}(-\d{1,2}(:\d{1,2}){0,2})?)?$"),
    "--nice": re.compile(r"^-?\d{1,5}$"),
    "--mem-bind": re.compile(r"^[a-z_,:0-9x]{1,64}$"),
}


def sbatch_option(text: str) -> str:
    """``--name`` or ``--name=value``, allowed and well-formed; else a ValueError naming why."""
    name, has_value, value = text.partition("=")
    if name not in ALLOWED_OPTIONS:
        raise ValueError(f"{name!r} is not an sbatch option Squall passes on (allowed: "
                         f"{', '.join(sorted(ALLOWED_OPTIONS))}); Squall sets the job's files, environment, "
                         "array and identity itself")
    pattern = ALLOWED_OPTIONS[name]
    if pattern is None and has_value:
        raise ValueError(f"{name} takes no value")
    if pattern is not None and not pattern.match(value):
        raise ValueError(f"{text!r}: {name} needs a value like {pattern.pattern}")
    return text


def setup_line(text: str) -> str:
    """A set-up command: its words as the shell would split them, every one quoted when written."""
    try:
        words = shlex.split(text, comments=False)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not one command line ({exc})") from None
    if not words or not COMMAND_WORD.match(words[0]) or "\n" in text or "\0" in text:
        raise ValueError(f"{text!r} is not one command line starting with a command name (e.g. 'module load "
                         "openmpi/4')")
    return text


def quoted_setup(lines: list[str]) -> list[str]:
    """The set-up lines as they go into a batch script: each word quoted."""
    return [shlex.join(shlex.split(line)) for line in lines]


SlurmName = Annotated[str, Field(pattern=NAME)]
SbatchOption = Annotated[str, AfterValidator(sbatch_option)]
SetupLine = Annotated[str, AfterValidator(setup_line)]


class SlurmOptions(StrictModel):
    """What a centre or a job asks of Slurm beyond the resources: all optional."""

    account: SlurmName | None = None
    qos: SlurmName | None = None
    constraint: Annotated[str, Field(pattern=CONSTRAINT)] | None = None
    reservation: SlurmName | None = None
    options: list[SbatchOption] = Field(default_factory=list, max_length=32)


class SiteSlurm(SlurmOptions):
    """A site's defaults (a job's own values win), its set-up lines, and the variables they set that the
    payload needs (the runtime passes only PATH, LANG, LC_ALL, TZ and TERM otherwise)."""

    setup: list[SetupLine] = Field(default_factory=list, max_length=32)
    keep_env: list[Annotated[str, Field(pattern=ENV_NAME)]] = Field(default_factory=list, max_length=32)


def merged(site: SiteSlurm | None, job: SlurmOptions | None) -> SlurmOptions:
    """The job's values over the site's; extra options from both (the site's first)."""
    site, job = site or SiteSlurm(), job or SlurmOptions()
    return SlurmOptions(account=job.account or site.account, qos=job.qos or site.qos,
                        constraint=job.constraint or site.constraint,
                        reservation=job.reservation or site.reservation,
                        options=list(dict.fromkeys([*site.options, *job.options])))
