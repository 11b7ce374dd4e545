"""One light file per site kind, each ending in ``register(SiteKind(...))``: ``local``, ``hpc``, ``ssh``,
``cloud``, ``kubernetes``. Importing this package registers them all, then the kinds of installed plug-ins:
each entry point of the group ``squall.kinds`` names a module whose import registers its kind (a plug-in that
fails to load is named in a warning and left out). A kind's heavy classes sit beside its file
(``local_site``, ``kubernetes_site``) and are imported only when a site is opened."""

import logging
from importlib.metadata import entry_points

from squall.sites.kinds import cloud, hpc, kubernetes, local, ssh  # noqa: F401 - each registers its kind

for _plugin in entry_points(group="squall.kinds"):
    try:
        _plugin.load()
    except Exception as exc:  # noqa: BLE001 - one broken plug-in must not stop every command
        logging.getLogger(__name__).warning("site kind plug-in %s (%s) not loaded: %s", _plugin.name,
                                            _plugin.value, exc)
