"""Entry point of ``Pulumi.yaml`` (``main: programs/``): the program is chosen by ``squall:kind``."""

from squall.programs.stacks import run_configured

run_configured()
