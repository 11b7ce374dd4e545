"""A site inventory's prices and energy figures as models (``squall_pricing``, ``squall_energy``)."""

from __future__ import annotations

from dataclasses import replace

from squall.inventory import Partition, Price, SiteVars
from squall.money.energy import EnergyModel
from squall.money.prices import PriceModel, ResourceRates, SlurmBilling


def price_model(site_vars: SiteVars, partition: Partition | None) -> PriceModel | None:
    """The model a job on ``partition`` (``None``: an ssh site's machines) is priced by; ``None``: unpriced."""
    pricing = site_vars.squall_pricing
    if pricing is None:
        return None
    common = {"currency": pricing.currency, "source": pricing.source, "as_of": pricing.as_of}
    billed = pricing.slurm_billing
    if billed is not None and partition is not None and partition.name in billed.weights:
        return SlurmBilling(**common, weights=billed.weights[partition.name],
                            max_tres="MAX_TRES" in billed.priority_flags, per_billing_hour=billed.per_billing_hour,
                            per_job=billed.per_job)
    rates: Price | None = partition.price if partition is not None and partition.price else pricing.rates
    if rates is None:
        return None
    return ResourceRates(**common, per_job=rates.per_job, per_core_hour=rates.per_core_hour,
                         per_gpu_hour=rates.per_gpu_hour, per_gb_hour=rates.per_gb_hour)


def energy_model(site_vars: SiteVars) -> EnergyModel:
    stated = site_vars.squall_energy
    if stated is None:
        return EnergyModel()
    given = {key: value for key, value in stated.model_dump().items() if value is not None and key != "source"}
    return replace(EnergyModel(), **given, source=stated.source)


def describe_rates(model: PriceModel | None) -> str:
    """One line for people: ``0.05 + 0.012/core-h + 0.9/GPU-h + 0.001/GB-h EUR`` or ``unpriced``."""
    if model is None:
        return "unpriced"
    if isinstance(model, SlurmBilling):
        flags = " (MAX_TRES)" if model.max_tres else ""
        return f"{model.per_job} + {model.per_billing_hour}/billing-h {model.currency}, weights {model.weights}{flags}"
    if isinstance(model, ResourceRates):
        return (f"{model.per_job} + {model.per_core_hour}/core-h + {model.per_gpu_hour}/GPU-h + "
                f"{model.per_gb_hour}/GB-h {model.currency}")
    return model.kind


def flavour_price(org, flavour: str) -> PriceModel | None:
    """A cloud machine's price from its organisation's ``prices`` (``None``: that flavour is unpriced)."""
    from squall.money.prices import NodeRates

    prices = org.prices
    if prices is None or flavour not in prices.flavours:
        return None
    return NodeRates(currency=prices.currency, source=prices.source, as_of=prices.as_of,
                     **prices.flavours[flavour].model_dump())
