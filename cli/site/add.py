"""``squall site add SITE --inventory DIR``"""

from __future__ import annotations

from pathlib import Path

import click

from squall.cli.context import App, output_option, pass_app


@click.command("add")
@click.argument("name", metavar="SITE")
@click.option("--inventory", type=click.Path(file_okay=False, path_type=Path),
              help="HPC or cloud site: folder with hosts.yml and group_vars/ (see inventories/example-hpc).")
@click.option("--kubernetes", "org_stack", metavar="ORG_STACK",
              help="Kubernetes site: the organisation stack (<org>.org.<name>) whose namespace jobs run in.")
@click.option("--context", help="Kubernetes site: kubeconfig context (default: the stack file's, else the current).")
@click.option("--network-policy-cni", metavar="CNI",
              help="Kubernetes site: the CNI that enforces NetworkPolicies there (calico, cilium...); without it, "
                   "jobs are not reported network-isolated.")
@output_option
@pass_app
def add_cmd(app: App, name: str, inventory: Path | None, org_stack: str | None, context: str | None,
            network_policy_cni: str | None) -> None:
    """Register SITE from its inventory folder, or as a Kubernetes site (validated; nothing is contacted)."""
    from squall.sites.registration import add_site, check_site_name
    from squall.errors import InvalidInput

    if (inventory is None) == (org_stack is None):
        raise InvalidInput("give --inventory DIR (HPC or cloud site) or --kubernetes ORG_STACK, not both or neither")
    if org_stack is not None:
        from squall.sites.kinds.kubernetes_site import add_kubernetes_site

        check_site_name(name)
        summary = add_kubernetes_site(app.store, name, org_stack, context, network_policy_cni)
        if app.json:
            app.emit(summary)
        else:
            app.say(f"added kubernetes site {name} (namespace of {summary['org_stack']})")
        return
    summary = add_site(app.store, name, inventory).summary()
    if app.json:
        app.emit(summary)
    else:
        app.say(f"added site {name} ({summary['login']}, {len(summary['partitions'])} partitions)")
