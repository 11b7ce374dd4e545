"""``squall server`` and ``squall token ...``: the JSON API for teams, and the tokens that sign in to it."""

from __future__ import annotations

import time

import click

from squall.cli.context import App, output_option, pass_app
from squall.cli.tables import print_table


@click.command("server")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (TLS: put a reverse "
                                                                      "proxy in front).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--spec-root", "spec_roots", multiple=True, type=click.Path(file_okay=False, exists=True),
              help="A folder whose job specs clients may submit by path (repeatable; default: none).")
@click.option("--take-over-every", default=10.0, show_default=True, type=click.FloatRange(min=0), metavar="SECONDS",
              help="How often to look for unfinished jobs no controller drives (a server or machine died) and "
                   "drive them; 0: never.")
@click.option("--local-site", is_flag=True,
              help="Offer the built-in 'local' site (this machine) to API jobs. Off by default: a token's payload "
                   "would run beside the server's home, store and tokens. When on, payloads run in a bubblewrap "
                   "sandbox, and the site refuses API jobs where none can be made.")
@click.option("--max-upload-mb", default=4096, show_default=True, type=click.IntRange(1, 1 << 20), metavar="MIB",
              help="The most one request may upload (a job's spec and files); larger ones are refused (413).")
@click.option("--forwarded-allow-ips", default="", metavar="ADDRESSES",
              help="Proxies (comma-separated addresses, or '*') whose X-Forwarded-For and X-Forwarded-Proto are "
                   "believed; default: none, so a client's address is always its connection's.")
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 3600),
              metavar="SECONDS", help="Close a connection that has not sent a whole request head in this time.")
@click.option("--max-connections", default=1000, show_default=True, type=click.IntRange(1, 1 << 20),
              help="Answer 503 beyond this many connections at once.")
@pass_app
def server_cmd(app: App, host: str, port: int, spec_roots: tuple[str, ...], take_over_every: float,
               local_site: bool, max_upload_mb: int, forwarded_allow_ips: str, header_timeout: float,
               max_connections: int) -> None:
    """Serve the v1 JSON API (/api/v1) over this Squall home until stopped (Ctrl-C or SIGTERM)."""
    from pathlib import Path

    from squall.errors import MissingDependency

    try:
        import uvicorn

        from squall.server.app import create_app
        from squall.server.slow_clients import with_head_deadline
    except ImportError as exc:
        raise MissingDependency(f"squall server needs the 'server' extra ({exc.name} is missing)",
                                hint="pip install 'squall[server]'") from None
    application = create_app(app.home, [Path(root) for root in spec_roots], app.log_format, take_over_every,
                             local_site, max_upload_mb)
    app.say(f"squall server: http://{host}:{port}/api/v1 (home {app.home})", err=True)
    ecs = app.log_format == "ecs"  # uvicorn's own lines through the same ECS handler, not its text config
    uvicorn.run(application, host=host, port=port, log_level="warning" if app.quiet else "info",
                timeout_graceful_shutdown=5,  # open event streams do not hold a stop for long
                http=with_head_deadline(header_timeout), limit_concurrency=max_connections,
                proxy_headers=bool(forwarded_allow_ips), forwarded_allow_ips=forwarded_allow_ips or None,
                **({"log_config": None} if ecs else {}))


@click.group("token")
def token_group() -> None:
    """API tokens for 'squall server': one per user and organisation, with a role."""


@token_group.command("create")
@click.option("--user", required=True, help="Who the token acts for.")
@click.option("--org", required=True, help="The organisation it is scoped to.")
@click.option("--role", type=click.Choice(["admin", "member", "partner"]), default="member", show_default=True)
@click.option("--application", help="A partner token's application (its jobs' project).")
@click.option("--expires", default="90d", show_default=True, help="How long it is valid: hours or days (12h, 30d), "
              "at most 365d.")
@output_option
@pass_app
def token_create_cmd(app: App, user: str, org: str, role: str, application: str | None, expires: str) -> None:
    """Create a token; it is shown this once (the store keeps only a digest of it)."""
    from squall.tokens import create

    token, who = create(app.store, user, org, role, application, expires)
    if app.json:
        app.emit({"token": token, "id": who.token_id, "user": user, "org": org, "role": role,
                  "application": application, "expires_at": who.expires_at})
        return
    app.say(token)
    app.say(f"token {who.token_id} for {user} in {org} ({role}), valid until {_when(who.expires_at)}; "
            "it is not shown again", err=True)


def _when(moment: float | None) -> str:
    return "never" if moment is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(moment))


@token_group.command("list")
@output_option
@pass_app
def token_list_cmd(app: App) -> None:
    """Every token (never the token itself)."""
    from squall.tokens import listing

    tokens = listing(app.reader)
    if app.json:
        app.emit(tokens)
        return
    print_table(app, ["ID", "USER", "ORG", "ROLE", "APPLICATION", "EXPIRES", "REVOKED"],
                [[t["id"], t["user"], t["org"], t["role"], t["application"] or "", _when(t["expires_at"]),
                  "yes" if t["revoked_at"] else ""] for t in tokens])


@token_group.command("revoke")
@click.argument("token_id")
@output_option
@pass_app
def token_revoke_cmd(app: App, token_id: str) -> None:
    """Revoke a token at once."""
    from squall.tokens import revoke

    revoke(app.store, token_id)
    app.say(f"token {token_id} revoked")
