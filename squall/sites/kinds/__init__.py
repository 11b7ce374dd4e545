"""Site kinds that need more than the registry's plain assembly: this machine (``local``), clouds behind a
head node (``cloud``) and Kubernetes (``kubernetes``)."""
