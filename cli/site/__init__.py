"""``squall site ...``"""

import click

from squall.cli.site.actions import check_cmd, enrol_cmd, health_cmd, unenrol_cmd
from squall.cli.site.add import add_cmd
from squall.cli.site.list import list_cmd
from squall.cli.site.remove import remove_cmd
from squall.cli.site.show import show_cmd


@click.group("site")
def site_group() -> None:
    """Enrol and inspect the sites jobs run on (HPC centres over SSH, clouds, Kubernetes)."""


for command in (list_cmd, show_cmd, add_cmd, remove_cmd, check_cmd, enrol_cmd, health_cmd, unenrol_cmd):
    site_group.add_command(command)
