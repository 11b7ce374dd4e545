"""Money, price models, Slurm billing, placement strategies and the budget ledger, without any site."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squall.errors import InvalidInput, Refused
from squall.money.amounts import Money
from squall.money.estimate import SiteEstimate
from squall.money.ledger import budget_state, set_budget, settle, take_holds
from squall.money.prices import Free, NodeRates, ResourceRates, SlurmBilling, TaskShape, from_description
from squall.money.quotes import Quote
from squall.money.slurm_billing import TresRequest, billing, parse_weights
from squall.placement import choose, parse_weights as placement_weights

D = Decimal


def test_money_keeps_cents_and_refuses_mixed_currencies():
    assert str(Money.parse("0.1 EUR") + Money.parse("0.2 EUR")) == "0.30 EUR"  # a float would say 0.30000000000000004
    assert Money.zero() + Money.parse("3 credits") == Money(D(3), "credits")
    with pytest.raises(ValueError, match="different currencies"):
        Money.parse("1 EUR") + Money.parse("1 USD")
    for bad in ("12", "12 eur", "EUR 12", "nan EUR"):
        with pytest.raises(ValueError):
            Money.parse(bad)


def test_slurm_weights_parse_as_slurm_reads_them():
    assert parse_weights("CPU=1.0,Mem=0.25G,GRES/gpu=2.0") == {"cpu": 1.0, "mem": 0.25 / 1024, "gres/gpu": 2.0}
    assert parse_weights("cpu=2,mem=1") == {"cpu": 2.0, "mem": 1.0}  # no unit: per MB
    for bad in ("CPU", "CPU=x", "Disk=1", "CPU=1G"):
        with pytest.raises(ValueError):
            parse_weights(bad)


def test_billing_sums_or_takes_the_node_maximum():
    weights = parse_weights("CPU=1.0,Mem=0.25G,GRES/gpu=8.0")
    request = TresRequest(cpus=4, mem_mb=8192, gres=(("gpu", 1),))
    assert billing(request, weights) == 4 + 2 + 8
    assert billing(request, weights, max_tres=True) == 8
    assert billing(TresRequest(cpus=3, mem_mb=100), {}) == 3  # no weights: the CPU count
    assert billing(TresRequest(cpus=1, mem_mb=1000), parse_weights("CPU=0.5,Mem=1G")) == 1  # 0.5 + 0.976..: truncated


def test_price_models_charge_what_they_say_and_round_trip():
    shape = TaskShape(cpus=2, memory_mb=4096, gpus=1)
    rates = ResourceRates(currency="EUR", per_job=D("0.05"), per_core_hour=D("0.01"), per_gpu_hour=D("0.9"),
                          per_gb_hour=D("0.001"))
    assert rates.cost(shape, [D(1), D(2)]).amount == D("0.05") + 3 * (2 * D("0.01") + D("0.9") + 4 * D("0.001"))
    billed = SlurmBilling(currency="credits", weights="CPU=1,GRES/gpu=4", per_billing_hour=D("0.5"))
    assert billed.cost(shape, [D(2)]).amount == 6 * D("0.5") * 2
    nodes = NodeRates(currency="USD", per_node_hour=D("3"), spin_up_per_node=D("0.1"), data_out_per_gb=D("0.09"))
    assert nodes.cost(shape, [D(1)], bytes_out=2 * 1024 ** 3).amount == D("3.1") + D("0.18")
    assert Free().cost(shape, [D(100)]) == Money.zero()
    for model in (rates, billed, nodes, Free()):
        assert from_description(model.describe()) == model


def estimate(site: str, seconds: float, cost: str | None, grams: str) -> SiteEstimate:
    money = Money.parse(cost) if cost else None
    return SiteEstimate(site, True, quote=Quote(price=None), bound_s=seconds, likely_s=seconds, cost_max=money,
                        cost_likely=money, gco2e_likely=D(grams))


SITES = [estimate("alpha", 600, "2 EUR", "50"), estimate("beta", 60, "9 EUR", "400"),
         estimate("gamma", 300, "1 EUR", "900"), estimate("delta", 30, None, "1"),
         SiteEstimate("omega", False, reason="no partition fits")]


@pytest.mark.parametrize("strategy, expected", [("fastest", "delta"), ("cheapest", "gamma"), ("greenest", "delta"),
                                                ("balanced", "alpha")])
def test_each_strategy_picks_its_site(strategy, expected):
    chosen = choose(SITES, strategy)
    assert chosen.site == expected and chosen.strategy == strategy
    table = {row["site"]: row for row in chosen.table}
    assert table["omega"] == {"site": "omega", "eligible": False, "reason": "no partition fits"}
    if strategy in ("cheapest", "balanced"):
        assert "unpriced" in table["delta"]["left_out"]  # never ranked as if it were free


def test_ties_go_to_the_first_name_and_weights_change_the_balance():
    assert choose([estimate("b", 10, "1 EUR", "1"), estimate("a", 10, "1 EUR", "1")], "fastest").site == "a"
    assert choose(SITES, "balanced", placement_weights("time=10")).site == "beta"
    with pytest.raises(ValueError):
        placement_weights("speed=1")


def test_cheapest_refuses_to_compare_currencies_and_nothing_eligible_is_refused():
    with pytest.raises(Refused, match="cannot compare prices in EUR, USD"):
        choose([estimate("a", 1, "1 EUR", "1"), estimate("b", 1, "1 USD", "1")], "cheapest")
    with pytest.raises(Refused, match="omega: no partition fits"):
        choose([SITES[-1]], "fastest")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 10**6), st.integers(0, 10**6)), min_size=1,
                max_size=8))
def test_a_single_objective_strategy_always_picks_the_argmin(values):
    sites = [estimate(f"s{i:02d}", t, f"{c} EUR", str(g)) for i, (t, c, g) in enumerate(values)]
    for strategy, key in (("fastest", lambda e: e.likely_s), ("cheapest", lambda e: e.cost_likely.amount),
                          ("greenest", lambda e: e.gco2e_likely)):
        best = min(sites, key=lambda e: (key(e), e.site))
        assert choose(sites, strategy).site == best.site


@pytest.fixture
def ledger(tmp_path):
    from squall.store import Store

    store = Store(tmp_path / "home")
    yield store
    store.close()


def test_holds_fit_the_budget_or_the_job_is_refused_naming_it(ledger):
    with ledger.transaction() as db:
        set_budget(db, "org:acme", Money.parse("10 EUR"))
    with ledger.transaction() as db:
        assert take_holds(db, "j1", "acme", "wind", "hpc", Money.parse("7 EUR")) == [("org:acme", Money.parse("7 EUR"))]
    with pytest.raises(Refused, match=r"budget org:acme: 3.00 EUR left of 10.00 EUR .* may cost up to 4.00 EUR"):
        with ledger.transaction() as db:
            take_holds(db, "j2", "acme", "wind", "hpc", Money.parse("4 EUR"))
    with pytest.raises(Refused, match="unpriced"):
        with ledger.transaction() as db:
            take_holds(db, "j3", "acme", "wind", "hpc", None)
    with pytest.raises(Refused, match="in EUR"):
        with ledger.transaction() as db:
            take_holds(db, "j4", "acme", "wind", "hpc", Money.parse("1 USD"))
    state = budget_state(ledger.rows, "org:acme")
    assert (state.held, state.settled, state.available) == (Money.parse("7 EUR"), Money.parse("0 EUR"),
                                                             Money.parse("3 EUR"))


def test_budget_set_and_topup_guard_what_is_spent(ledger):
    with ledger.transaction() as db:
        set_budget(db, "project:acme/wind", Money.parse("5 credits"))
        take_holds(db, "j1", "acme", "wind", "hpc", Money.parse("4 credits"))
    with pytest.raises(Refused, match="less than"):
        with ledger.transaction() as db:
            set_budget(db, "project:acme/wind", Money.parse("3 credits"))
    with ledger.transaction() as db:
        assert set_budget(db, "project:acme/wind", Money.parse("2 credits"), add=True).budget == Money.parse("7 credits")
    for scope, amount in (("org:Acme", "1 EUR"), ("team:x", "1 EUR"), ("project:acme", "1 EUR")):
        with pytest.raises(InvalidInput):
            with ledger.transaction() as db:
                set_budget(db, scope, Money.parse(amount))
    with pytest.raises(InvalidInput, match="is in credits"):
        with ledger.transaction() as db:
            set_budget(db, "project:acme/wind", Money.parse("1 EUR"))


@settings(max_examples=100, deadline=None)
@given(held=st.integers(0, 10**6), used=st.integers(0, 2 * 10**6))
def test_settling_twice_equals_settling_once_and_never_exceeds_the_hold(tmp_path_factory, held, used):
    from squall.store import Store

    store = Store(tmp_path_factory.mktemp("h"))
    try:
        with store.transaction() as db:
            set_budget(db, "org:a", Money(D(held) / 100 + 1, "EUR"))
            take_holds(db, "j", "a", "p", "s", Money(D(held) / 100, "EUR"))
        with store.transaction() as db:
            assert settle(db, "j", Money(D(used) / 100, "EUR"))
        once = budget_state(store.rows, "org:a")
        with store.transaction() as db:
            assert not settle(db, "j", Money(D(used) / 100, "EUR"))
        assert budget_state(store.rows, "org:a") == once
        assert once.settled.amount == min(D(held), D(used)) / 100 and once.held.amount == 0
        assert (once.settled + once.held).amount <= once.budget.amount
    finally:
        store.close()


@settings(max_examples=300, deadline=None)
@given(cloud=st.decimals(min_value=0, max_value=10**6, places=4), service=st.decimals(min_value=0, max_value=10**6,
                                                                                     places=4),
       multiplier=st.sampled_from([D(1), D(5), D("1.5")]))
def test_the_price_split_adds_up_exactly_and_the_platform_gets_at_least_0_2(cloud, service, multiplier):
    from squall.money.accounts import split_price

    split = split_price(Money(cloud, "credits"), Money(service, "credits"), "t", multiplier)
    assert split.p_user.amount == split.p_cloud.amount + split.p_zs.amount + split.p_zop.amount
    assert split.p_serv.amount == split.p_zs.amount + split.p_zop.amount
    assert all(part.amount == part.rounded().amount for part in (split.p_cloud, split.p_zs, split.p_zop))
    assert split.p_zs.amount >= D("0.2") and split.p_zs.amount >= (split.p_zop.amount * D("0.05")).quantize(D("0.01"))
    assert split.p_cloud == (Money(cloud, "credits") * multiplier).rounded()


def test_a_service_priced_in_another_currency_is_refused_and_a_free_user_pays_five_times():
    from squall.money.accounts import split_price

    with pytest.raises(Refused, match="service.price is in credits, the site prices in EUR"):
        split_price(Money.parse("1 EUR"), Money.parse("1 credits"))
    assert split_price(Money.parse("2 EUR"), None, "free", D(5)).p_user == Money.parse("10 EUR")
    assert split_price(Money.zero(), Money.parse("10 credits")).p_user == Money.parse("10.50 credits")


def test_members_only_once_an_organisation_has_members(ledger):
    from squall.money.accounts import tier_of

    with ledger.transaction() as db:
        assert tier_of(db, "acme", "ana") == ("gold", D(1))  # open organisation
        db.execute("INSERT INTO members VALUES ('acme', 'ana', 'member', 'free')")
        assert tier_of(db, "acme", "ana") == ("free", D(5))
        with pytest.raises(Refused, match="'bob' is not a member of organisation 'acme'"):
            tier_of(db, "acme", "bob")
