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
    from squall.admission import candidate_sites, estimate_sites
    from squall.errors import InvalidInput, SquallError
    from squall.jobs import new_job_id, new_plan
    from squall.placement import AUTO, choose
    from squall.sites import open_site
    from squall.spec import load_spec

    if site and every:
        raise InvalidInput("--site and --all: give one or the other")
    resolved = load_spec(spec)
    defaults = app.defaults
    named = site or (resolved.spec.site if "site" in resolved.spec.model_fields_set else defaults["site"].value)
    plan = new_plan(resolved, new_job_id(), app.home / "estimate", app.store.store_id, org=defaults["org"].value)
    names = candidate_sites(app.store) if every or named == AUTO else [named]
    found = estimate_sites(plan, names, lambda name: open_site(name, app.home, app.store), app.store)
    for _, site_opened in found:
        if site_opened is not None:
            site_opened.close()
    estimates = [e for e, _ in found]
    rows = [e.to_dict() for e in sorted(estimates, key=lambda e: e.site)]
    chosen = None
    if len(names) > 1 and any(e.eligible for e in estimates):
        try:
            chosen = choose(estimates, strategy, weights)
        except SquallError as exc:
            app.say(f"auto would choose nothing: {exc}", err=True)
    for row in rows:
        row["chosen"] = chosen is not None and row["site"] == chosen.site
    if app.json:
        app.emit({"spec": spec, "strategy": strategy, "choice": chosen.to_dict() if chosen else None,
                  "sites": rows})
        return
    print_estimates(app, rows)
    if chosen:
        app.say(f"auto would choose {chosen.site}: {chosen.reason}")
