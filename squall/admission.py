"""Admission: the step between planning a job and creating it — estimate, place, then hold.

A named site is checked and estimated; ``auto`` estimates every known site (the
built-in ones and those registered in this store) and lets the strategy choose
(``squall.placement``). The budget holds are taken by the store in the
transaction that creates the job (``squall.money.ledger.take_holds``), so a refused
job leaves nothing behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from squall.database import Connection
from squall.errors import SquallError
from squall.money.accounts import split_price, tier_of
from squall.money.estimate import SiteEstimate, estimate
from squall.money.ledger import in_transaction, service_price, take_holds
from squall.money.quotas import check_site_limit, job_amounts, quota_scopes, reserve
from squall.money.settlement import energy_description
from squall.placement import AUTO, Placement, choose
from squall.sites.registration import all_sites
from squall.job_types import JobPlan
from squall.sites.contract import Site
from squall.store import Store


@dataclass(frozen=True)
class Admission:
    site: Site
    placement: Placement
    estimate: SiteEstimate

    def take(self, db: Connection, plan: JobPlan, user: str) -> None:
        """Inside the job's creating transaction: the site's job limit, the user's membership and tier,
        the price split, and the budget holds for the user's maximum price. Raises ``Refused``."""
        spec, org = plan.spec, plan.tags["squall:org"]
        check_site_limit(db, self.site.name, self.site.max_concurrent_jobs)
        reserve(db, plan.job_id, quota_scopes(org, spec.project, user), job_amounts(plan))
        tier, multiplier = tier_of(db, org, user)
        cloud = self.estimate.cost_max
        service = service_price(in_transaction(db), spec.service.partner) if spec.service else None
        split = split_price(cloud, service, tier, multiplier) if cloud is not None else None
        take_holds(db, plan.job_id, org, spec.project, self.site.name, split.p_user if split else None)
        if split is not None:
            db.execute("INSERT INTO price_splits (job_id, split) VALUES (?, ?)",
                       (plan.job_id, json.dumps(split.to_dict())))

    def record(self) -> dict:
        """What the job keeps of its admission: the estimate and the price model it is settled with."""
        quote = self.estimate.quote
        return {"site_estimate": self.estimate.to_dict(),
                "price": quote.price.describe() if quote and quote.price else None,
                "energy": energy_description(quote.energy) if quote else None}


SiteOffer = Callable[[Site], None]  # raises ``Refused`` for a site the caller may not use (the server's rule)


def offered(site: Site, offer: SiteOffer | None) -> Site:
    """``site`` if ``offer`` allows it; closed, and the refusal raised, if not."""
    if offer is not None:
        try:
            offer(site)
        except SquallError:
            site.close()
            raise
    return site


def candidate_sites(store: Store) -> list[str]:
    return sorted(all_sites(store))


def estimate_sites(plan: JobPlan, names: list[str], open_site: Callable[[str], Site],
                   store: Store) -> list[tuple[SiteEstimate, Site | None]]:
    """Each named site's estimate (a site that cannot even be opened is ineligible, saying why) and the
    opened site, for the caller to use or close."""
    found: list[tuple[SiteEstimate, Site | None]] = []
    for name in names:
        try:
            site = open_site(name)
        except SquallError as exc:
            found.append((SiteEstimate(name, False, reason=str(exc)), None))
            continue
        found.append((estimate(site, plan, store), site))
    return found


def admit(plan: JobPlan, requested: str, source: str, open_site: Callable[[str], Site], store: Store,
          strategy: str = "balanced", weights: dict[str, Decimal] | None = None) -> Admission:
    """Where ``plan`` runs and what it is expected to cost; raises as the site check does (nothing created)."""
    if requested != AUTO:
        site = open_site(requested)
        site.check(plan)  # a named site's refusal is the user's answer, with its own exit code
        found = estimate(site, plan, store, checked=True)
        return Admission(site, Placement(requested, site.name, f"named by {source}", table=[found.to_dict()]), found)
    found = estimate_sites(plan, candidate_sites(store), open_site, store)
    placement = choose([e for e, _ in found], strategy, weights)
    chosen, site = next((e, s) for e, s in found if e.site == placement.site)
    assert site is not None, placement.site
    return Admission(site, placement, chosen)
