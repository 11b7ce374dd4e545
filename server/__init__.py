"""The Squall server: a versioned JSON API (``/api/v1``) over the same core the CLI drives.

The core (``squall``) knows nothing of the web framework: this package turns
HTTP requests into calls of the store, the runner and the money modules, and
their answers and errors into the one envelope every response carries.
"""
