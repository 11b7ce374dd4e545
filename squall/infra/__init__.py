"""Cloud infrastructure driven from the core: stacks, organisations, the VM bank, CI environments."""
