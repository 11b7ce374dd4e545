"""Shell completion of job ids and site names (click's own completion: see the README).

Completion runs on every Tab press, so it only reads: the store is opened
read-only (never created), and any failure completes nothing rather than
printing a traceback into the user's shell.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem


def _read_only_store(ctx: click.Context):
    from squall.paths import squall_home
    from squall.store import Store

    import os

    home = squall_home(ctx.find_root().params.get("home"))
    shared = os.environ.get("SQUALL_DATABASE_URL")  # a team's PostgreSQL store: no file in the home
    return Store(home, read_only=True) if shared or (home / "squall.db").is_file() else None


def job_ids(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        store = _read_only_store(ctx)
        if store is None:
            return []
        try:
            return [CompletionItem(job.id, help=f"{job.status} {job.name} on {job.site}")
                    for job in store.jobs(200) if job.id.startswith(incomplete)]
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - a completion never breaks the shell
        return []


def site_names(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    try:
        from squall.sites.inventories import found_inventories
        from squall.sites.registration import all_sites, builtin_sites

        store = _read_only_store(ctx)
        names = builtin_sites()
        if store is not None:
            try:
                names = all_sites(store)
            finally:
                store.close()
        for name in found_inventories():
            names.setdefault(name, "inventory found")
        return [CompletionItem(name, help=kind) for name, kind in sorted(names.items()) if name.startswith(incomplete)]
    except Exception:  # noqa: BLE001 - a completion never breaks the shell
        return []
