"""The garbage collector: what crashed or foreign jobs left at sites (``sites``) and in the Pulumi
backend and clouds (``stacks``), each reported as a ``GcAction``."""
