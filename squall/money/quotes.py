"""What a site tells the estimator about one job: its price model, energy figures, and when it could start."""

from __future__ import annotations

from dataclasses import dataclass, field

from squall.money.energy import EnergyModel
from squall.money.prices import PriceModel
from squall.money.site_limits import SiteLimit


@dataclass(frozen=True)
class Quote:
    price: PriceModel | None  # None: the site is unpriced
    energy: EnergyModel = field(default_factory=EnergyModel)
    partition: str | None = None
    concurrency: int | None = None  # tasks that run at once; None: all of them
    queue_wait_s: float = 0.0
    queue_source: str = "starts at once"
    site_limits: tuple[SiteLimit, ...] = ()  # the site's own limits on this job (a Slurm association's)
    site_limits_source: str = "the site states no limits of its own"
