"""``job estimate``: for each eligible site, when a job would start, how long it runs, what it costs and
emits, and for every other site why not; which site ``auto`` would choose. Creates nothing. Shared by the
CLI and the server."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from squall.errors import SquallError
from squall.spec import ResolvedSpec
from squall.store import Store

if TYPE_CHECKING:
    from squall.admission import SiteOffer


def estimate_spec(store: Store, home: Path, resolved: ResolvedSpec, named: str, every: bool, strategy: str,
                  weights: dict[str, Decimal] | None, org: str, offer: "SiteOffer | None" = None
                  ) -> tuple[dict, str | None]:
    """``{"strategy", "choice", "sites"}`` and, when ``auto`` could choose nothing, why; a site ``offer``
    refuses is shown ineligible with its reason."""
    from squall.admission import candidate_sites, estimate_sites, offered
    from squall.jobs import new_job_id, new_plan
    from squall.placement import AUTO, choose
    from squall.sites.registration import open_site

    plan = new_plan(resolved, new_job_id(), home / "estimate", store.store_id, org=org)
    names = candidate_sites(store) if every or named == AUTO else [named]
    found = estimate_sites(plan, names, lambda name: offered(open_site(name, home, store), offer),
                           store)
    for _, opened in found:
        if opened is not None:
            opened.close()
    estimates = [e for e, _ in found]
    rows = [e.to_dict() for e in sorted(estimates, key=lambda e: e.site)]
    chosen, why_not = None, None
    if len(names) > 1 and any(e.eligible for e in estimates):
        try:
            chosen = choose(estimates, strategy, weights)
        except SquallError as exc:
            why_not = str(exc)
    for row in rows:
        row["chosen"] = chosen is not None and row["site"] == chosen.site
    return {"strategy": strategy, "choice": chosen.to_dict() if chosen else None, "sites": rows}, why_not
