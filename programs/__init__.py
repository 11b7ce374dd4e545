"""Pulumi programs, imported as ``squall.programs``: functions that build
ComponentResources from typed args; only the program entry reads
``pulumi.Config``. ``Pulumi.yaml`` points here (``main: programs/``)."""
