"""``squall job estimate SPEC``"""

from __future__ import annotations

import click

from squall.cli.completion import site_names
from squall.cli.context import App, output_option, pass_app
from squall.cli.job.placing import print_estimates, strategy_option, weights_option


@click.command("estimate")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--site", shell_complete=site_names, help="Estimate at this site only.")
@click.option("--all", "every", is_flag=True, help="Estimate at every known site (and show which auto would pick).")
@strategy_option
@weights_option
@output_option
@pass_app
def estimate_cmd(app: App, spec: str, site: str | None, every: bool, strategy: str, weights) -> None:
    """For each eligible site: when the job would start, how long it runs (likely and at most), what it costs
    (likely and at most), its energy and emissions — and for each other site, why not. Creates nothing."""
    from squall.errors import InvalidInput
    from squall.estimates import estimate_spec
    from squall.spec import load_spec

    if site and every:
        raise InvalidInput("--site and --all: give one or the other")
    if app.api:
        from squall.cli.remote import upload

        answer = upload(app.api, "/estimate", spec, {"strategy": strategy, "every": str(every).lower(),
                                                     **({"site": site} if site else {})})
        found, why_not = {k: answer[k] for k in ("strategy", "choice", "sites")}, answer["why_not"]
    else:
        resolved = load_spec(spec)
        defaults = app.defaults
        named = site or (resolved.spec.site if "site" in resolved.spec.model_fields_set else defaults["site"].value)
        found, why_not = estimate_spec(app.store, app.home, resolved, named, every, strategy, weights,
                                       defaults["org"].value)
    if why_not:
        app.say(f"auto would choose nothing: {why_not}", err=True)
    if app.json:
        app.emit({"spec": spec, **found})
        return
    print_estimates(app, found["sites"])
    if found["choice"]:
        app.say(f"auto would choose {found['choice']['site']}: {found['choice']['reason']}")
