"""Who pays what: organisation members with a role and a tier, and a partner's service price.

A user pays, for a job,

    P_USER = P_CLOUD + P_SERV,   P_SERV = P_ZS + P_ZOP,   P_ZS = max(0.2 credits, 5 % of P_ZOP)

where P_CLOUD is the site's cost times the user's tier multiplier (Gold 1×, Free 5× by default:
a Free user pays five times what a Gold user pays for the same resources), P_ZOP the partner's
price for its application (a job's ``service.price``) and P_ZS the platform's share of it. Each
part is rounded to the cent, so the parts add up to P_USER exactly. Services are priced in
credits (the floor is 0.2 credits); a job cannot mix them with a site priced in another currency.

An organisation with no members is open (everyone is Gold); once it has members, only they may
submit its jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from squall.database import Connection
from squall.errors import Refused
from squall.money.amounts import ANY, Money

PLATFORM_SHARE = Decimal("0.05")
PLATFORM_FLOOR = Money(Decimal("0.2"), "credits")
DEFAULT_TIERS = {"gold": Decimal(1), "free": Decimal(5)}


@dataclass(frozen=True)
class PriceSplit:
    tier: str
    multiplier: Decimal
    p_cloud: Money
    p_zop: Money
    p_zs: Money

    @property
    def p_serv(self) -> Money:
        return self.p_zs + self.p_zop

    @property
    def p_user(self) -> Money:
        return self.p_cloud + self.p_serv

    def to_dict(self) -> dict:
        return {"tier": self.tier, "multiplier": str(self.multiplier), "p_cloud": self.p_cloud.to_json(),
                "p_zop": self.p_zop.to_json(), "p_zs": self.p_zs.to_json(), "p_serv": self.p_serv.to_json(),
                "p_user": self.p_user.to_json()}


def split_price(cloud: Money, service: Money | None, tier: str = "gold", multiplier: Decimal = Decimal(1)) -> PriceSplit:
    """The parts of what a user pays; each rounded to the cent (so they add up exactly)."""
    p_cloud = (cloud * multiplier).rounded()
    if service is None:
        return PriceSplit(tier, multiplier, p_cloud, Money.zero(), Money.zero())
    if p_cloud.currency not in (ANY, service.currency):
        raise Refused(f"service.price is in {service.currency}, the site prices in {p_cloud.currency}",
                      hint="a partner service runs where prices are in its currency (credits)")
    p_zop = service.rounded()
    share = Money(p_zop.amount * PLATFORM_SHARE, p_zop.currency)
    p_zs = (PLATFORM_FLOOR if share < PLATFORM_FLOOR else share).rounded()
    return PriceSplit(tier, multiplier, p_cloud, p_zop, p_zs)


def tier_of(db: Connection, org: str, user: str) -> tuple[str, Decimal]:
    """The user's tier in ``org`` and its multiplier; ``Refused`` if the organisation has members and the
    user is not one of them."""
    members = db.execute("SELECT \"user\", tier FROM members WHERE org = ?", (org,)).fetchall()
    if not members:
        return "gold", DEFAULT_TIERS["gold"]
    tier = next((t for u, t in members if u == user), None)
    if tier is None:
        raise Refused(f"user {user!r} is not a member of organisation {org!r}",
                      hint=f"an admin adds them: squall member set {org} {user}")
    row = db.execute("SELECT multiplier FROM tiers WHERE name = ?", (tier,)).fetchone()
    return tier, Decimal(row[0]) if row else DEFAULT_TIERS.get(tier, Decimal(1))
