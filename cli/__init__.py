"""The ``squall`` command line: click commands only; files mirror the command tree."""
