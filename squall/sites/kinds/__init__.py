"""One light file per site kind, each ending in ``register(SiteKind(...))``: ``local``, ``hpc``, ``ssh``,
``cloud``, ``kubernetes``. Importing this package registers them all; a kind's heavy classes sit beside its
file (``local_site``, ``cloud_site``, ``kubernetes_site``) and are imported only when a site is opened."""

from squall.sites.kinds import cloud, hpc, kubernetes, local, ssh  # noqa: F401 - each registers its kind
