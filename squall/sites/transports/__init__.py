"""Transports: how the controller reaches a site's hosts — this machine (``local``), machines over SSH
(``ssh``, its pooled ``ssh_session`` and the ``bulk_upload`` through OpenSSH; ``through_head``: a job's
machines behind an organisation's head node), a Kubernetes volume through
the API (``kubernetes_volume``) — and what travels with them (the local ``sandbox``, container ``images``).
Each implements ``contract.Transport``."""
