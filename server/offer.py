"""Which sites the server offers to API tokens.

A payload submitted through the API comes from whoever holds a token —
partners' tool-chains included, which may be hostile. The built-in ``local``
site runs payloads on the server's own machine, beside its home, store,
uploads and process environment, so the server offers it only when the
operator asks (``squall server --local-site``) and only while the payloads
there run in a sandbox (``squall.sites.transports.sandbox``). Every other site runs
payloads on machines that hold no credentials of the server.
"""

from __future__ import annotations

from squall.admission import SiteOffer
from squall.errors import Refused
from squall.sites.contract import Site
from squall.sites.kinds.local_site import LocalSite


def sites_offered(local_site: bool) -> SiteOffer:
    def offer(site: Site) -> None:
        if not isinstance(site, LocalSite):
            return
        if not local_site:
            raise Refused(f"site: {site.name!r} runs payloads on the server's own machine, which this server "
                          "offers to API jobs only when started with --local-site",
                          hint="name another site (an operator may offer this one with 'squall server --local-site';"
                               " its payloads then run sandboxed)")
        if site.sandbox.fields is None:
            raise Refused(f"site: {site.name!r} takes no API jobs: no sandbox can be made on the server's machine "
                          f"({site.sandbox.reason})", hint="apt-get install bubblewrap")

    return offer
