"""Transports: how the controller reaches a site's hosts — this machine (``local``), machines over SSH
(``ssh``, its pooled ``ssh_session`` and the ``bulk_upload`` through OpenSSH), a Kubernetes volume through
the API (``kubernetes_volume``) — and what travels with them (the local ``sandbox``, container ``images``).
Each implements ``contract.Transport``."""
