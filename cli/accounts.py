"""``squall member ...`` and ``squall tier ...``: who may submit an organisation's jobs, at which tier."""

from __future__ import annotations

import click

from squall.cli.context import App, output_option, pass_app
from squall.cli.tables import print_table


@click.group("member")
def member_group() -> None:
    """Organisation members: a role (admin, member) and a tier (what they pay: see 'squall tier list')."""


def _slug(what: str, value: str) -> str:
    from squall.errors import InvalidInput
    from squall.slugs import SLUG, SLUG_HINT

    if not SLUG.fullmatch(value):
        raise InvalidInput(f"{what}: {value!r} is not a valid name", hint=SLUG_HINT)
    return value


@member_group.command("set")
@click.argument("org")
@click.argument("user")
@click.option("--role", type=click.Choice(["admin", "member"]), default="member", show_default=True)
@click.option("--tier", default="gold", show_default=True, help="A tier from 'squall tier list'.")
@output_option
@pass_app
def member_set_cmd(app: App, org: str, user: str, role: str, tier: str) -> None:
    """Add USER to ORG (or change their role or tier). Once an organisation has members, only they submit."""
    from squall.errors import InvalidInput

    with app.store.transaction() as db:
        if db.execute("SELECT 1 FROM tiers WHERE name = ?", (tier,)).fetchone() is None:
            known = ", ".join(row[0] for row in db.execute("SELECT name FROM tiers ORDER BY name"))
            raise InvalidInput(f"--tier: {tier!r} is not a tier", hint=f"tiers: {known}")
        db.execute("INSERT INTO members (org, \"user\", role, tier) VALUES (?, ?, ?, ?) ON CONFLICT (org, \"user\") DO "
                   "UPDATE SET role = excluded.role, tier = excluded.tier",
                   (_slug("ORG", org), _slug("USER", user), role, tier))
    _members(app, org)


@member_group.command("remove")
@click.argument("org")
@click.argument("user")
@output_option
@pass_app
def member_remove_cmd(app: App, org: str, user: str) -> None:
    """Remove USER from ORG and revoke every token of theirs there, at once. The last member stays: an
    organisation without members is open to every user."""
    from squall.errors import InvalidInput, NotFound
    from squall.tokens import revoke_member

    with app.store.transaction() as db:
        members = [row[0] for row in db.execute("SELECT \"user\" FROM members WHERE org = ?", (org,))]
        if user not in members:
            raise NotFound(f"{user!r} is not a member of {org!r}", hint=f"see: squall member list {org}")
        if members == [user]:
            raise InvalidInput(f"{user!r} is the last member of {org!r}: without members it would be open to every "
                               "user", hint=f"add another member first (squall member set {org} USER), or revoke "
                               "their tokens: squall token revoke ID")
        db.execute("DELETE FROM members WHERE org = ? AND \"user\" = ?", (org, user))
        revoked = revoke_member(db, org, user)
    if app.json:
        app.emit({"org": org, "user": user, "removed": True, "tokens_revoked": revoked})
    else:
        app.say(f"{user} removed from {org}; {revoked} token(s) revoked")


@member_group.command("list")
@click.argument("org", required=False)
@output_option
@pass_app
def member_list_cmd(app: App, org: str | None) -> None:
    """Members of ORG (or of every organisation)."""
    _members(app, org)


def _members(app: App, org: str | None) -> None:
    rows = app.reader.rows("SELECT org, \"user\", role, tier FROM members" + (" WHERE org = ?" if org else "")
                           + " ORDER BY org, \"user\"", (org,) if org else ())
    if app.json:
        app.emit([dict(zip(("org", "user", "role", "tier"), row)) for row in rows])
    elif not rows:
        app.say("no members: the organisation is open to every user, at the gold tier")
    else:
        print_table(app, ["ORG", "USER", "ROLE", "TIER"], [list(row) for row in rows])


@click.group("tier")
def tier_group() -> None:
    """Tiers: a multiplier on the resources' price (gold 1×, free 5× by default)."""


@tier_group.command("list")
@output_option
@pass_app
def tier_list_cmd(app: App) -> None:
    """Every tier and its multiplier."""
    _tiers(app)


@tier_group.command("set")
@click.argument("name")
@click.argument("multiplier")
@output_option
@pass_app
def tier_set_cmd(app: App, name: str, multiplier: str) -> None:
    """Make tier NAME pay MULTIPLIER times the resources' price."""
    from decimal import Decimal, InvalidOperation

    from squall.errors import InvalidInput

    try:
        value = Decimal(multiplier)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        raise InvalidInput(f"MULTIPLIER: {multiplier!r} is not a number above 0")
    with app.store.transaction() as db:
        db.execute("INSERT INTO tiers (name, multiplier) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                   "multiplier = excluded.multiplier", (_slug("NAME", name), str(value)))
    _tiers(app)


def _tiers(app: App) -> None:
    rows = app.reader.rows("SELECT name, multiplier FROM tiers ORDER BY CAST(multiplier AS REAL), name")
    if app.json:
        app.emit([{"tier": name, "multiplier": value} for name, value in rows])
    else:
        print_table(app, ["TIER", "MULTIPLIER"], [[name, f"{value}×"] for name, value in rows])
