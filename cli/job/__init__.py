"""``squall job ...``"""

import click

from squall.cli.job.attach import attach_cmd
from squall.cli.job.cancel import cancel_cmd
from squall.cli.job.estimate import estimate_cmd
from squall.cli.job.list import list_cmd
from squall.cli.job.logs import logs_cmd
from squall.cli.job.run import run_cmd
from squall.cli.job.schema import schema_cmd
from squall.cli.job.status import status_cmd


@click.group("job")
def job_group() -> None:
    """Run jobs and follow them."""


for command in (run_cmd, estimate_cmd, list_cmd, status_cmd, logs_cmd, cancel_cmd, attach_cmd, schema_cmd):
    job_group.add_command(command)
