"""Where a job runs, and why: the decision is journaled with the job and shown to the user.

``--site`` (or the spec's ``site``, or the user's default) names a site; ``auto``
ranks every eligible site by a strategy over its estimate:

- ``fastest``: the likely end (queue wait + waves × likely run time);
- ``cheapest``: the likely cost — an unpriced site cannot be ranked and is left out,
  and sites priced in different currencies are not compared (no exchange rates);
- ``greenest``: the likely emissions (gCO₂e);
- ``balanced``: a weighted sum of time, cost and emissions, each divided by its
  largest value among the candidates (weights ``time=1,cost=1,carbon=1`` by default).

Ties go to the site whose name sorts first, so the same inputs always give the same site.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from squall.errors import Refused
from squall.job_types import AUTO

if TYPE_CHECKING:
    from squall.money.estimate import SiteEstimate

STRATEGIES = ("fastest", "cheapest", "greenest", "balanced")
DEFAULT_WEIGHTS = {"time": Decimal(1), "cost": Decimal(1), "carbon": Decimal(1)}


@dataclass(frozen=True)
class Placement:
    requested: str  # what was asked: a site's name, or "auto"
    site: str
    reason: str
    strategy: str | None = None
    table: list[dict] = field(default_factory=list)  # every site considered, with its estimate or why not

    def to_dict(self) -> dict:
        return {"requested": self.requested, "site": self.site, "reason": self.reason, "strategy": self.strategy,
                "table": self.table}


def requested_site(command_line: str | None, spec_site: str | None, default: str = "local",
                   default_source: str = "default") -> tuple[str, str]:
    """(site or ``auto``, who said so): ``--site``, else the spec's ``site``, else the user's default."""
    return next((value, source) for value, source in (
        (command_line, "--site"), (spec_site, "the spec's site"), (default, default_source)) if value)


def parse_weights(text: str) -> dict[str, Decimal]:
    """``"time=2,cost=1,carbon=0"`` → weights (missing ones keep their default)."""
    weights = dict(DEFAULT_WEIGHTS)
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in DEFAULT_WEIGHTS:
            raise ValueError(f"{part!r}: weights are time, cost and carbon")
        try:
            weights[key] = Decimal(value)
        except ArithmeticError:
            raise ValueError(f"{part!r}: {value!r} is not a number") from None
        if not weights[key].is_finite() or weights[key] < 0:
            raise ValueError(f"{part!r}: a weight is a number of 0 or more")
    return weights


def choose(estimates: list[SiteEstimate], strategy: str, weights: dict[str, Decimal] | None = None) -> Placement:
    """The best eligible site by ``strategy``; ``Refused`` (exit 4) when none can be ranked."""
    table = [e.to_dict() for e in sorted(estimates, key=lambda e: e.site)]
    ranked, left_out = _rankable(estimates, strategy)
    if not ranked:
        reasons = "; ".join(f"{e.site}: {e.reason}" for e in estimates if not e.eligible)
        reasons += "".join(f"; {site}: {why}" for site, why in left_out.items())
        raise Refused(f"site auto: no site can take this job by {strategy}: {reasons or 'no sites'}",
                      hint="'squall job estimate SPEC --all' shows every site and why")
    scores = _scores(ranked, strategy, weights or DEFAULT_WEIGHTS)
    best = min(ranked, key=lambda e: (scores[e.site], e.site))
    for row in table:
        if row["site"] in scores:
            row["score"] = str(scores[row["site"]])
        elif row["site"] in left_out:
            row["left_out"] = left_out[row["site"]]
    others = len(ranked) - 1
    return Placement(AUTO, best.site, f"{strategy}: best of {others + 1} eligible site(s) "
                     f"({_why(best, strategy)})", strategy, table)


def _rankable(estimates: list[SiteEstimate], strategy: str) -> tuple[list[SiteEstimate], dict[str, str]]:
    eligible = [e for e in estimates if e.eligible]
    if strategy not in ("cheapest", "balanced"):
        return eligible, {}
    left_out = {e.site: f"unpriced: {strategy} cannot rank it" for e in eligible if not e.priced}
    priced = [e for e in eligible if e.priced]
    currencies = {e.cost_likely.currency for e in priced if e.cost_likely and e.cost_likely.amount != 0}
    if len(currencies) > 1:
        raise Refused(f"site auto: {strategy} cannot compare prices in {', '.join(sorted(currencies))}",
                      hint="name a site with --site, or choose --strategy fastest or greenest")
    return priced, left_out


def _scores(ranked: list[SiteEstimate], strategy: str, weights: dict[str, Decimal]) -> dict[str, Decimal]:
    time = {e.site: Decimal(str(e.likely_s)) for e in ranked}
    cost = {e.site: e.cost_likely.amount if e.cost_likely else Decimal(0) for e in ranked}
    carbon = {e.site: e.gco2e_likely for e in ranked}
    if strategy == "fastest":
        return time
    if strategy == "cheapest":
        return cost
    if strategy == "greenest":
        return carbon

    def share(values: dict[str, Decimal], site: str) -> Decimal:
        top = max(values.values())
        return values[site] / top if top else Decimal(0)
    return {site: weights["time"] * share(time, site) + weights["cost"] * share(cost, site)
            + weights["carbon"] * share(carbon, site) for site in time}


def _why(best: SiteEstimate, strategy: str) -> str:
    cost = str(best.cost_likely) if best.cost_likely is not None else "unpriced"
    return f"likely {round(best.likely_s)} s, {cost}, {round(best.gco2e_likely, 1)} gCO2e"
