"""``squall site add SITE --inventory DIR``, or a kind's own options (``--kubernetes ORG_STACK``)."""

from __future__ import annotations

from pathlib import Path

import click

from squall.cli.context import App, output_option, pass_app


class KindOptions(click.Command):
    """``site add`` with each registered kind's own options, read when the command runs or shows its help
    (the kinds are not loaded when the CLI starts)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not getattr(self, "_kinds_read", False):
            from squall.sites.registry import adders
            import squall.sites.kinds  # noqa: F401 - registers the built-in kinds

            known = {param.name for param in self.params}
            for adder in adders().values():
                for option in (adder.option, *adder.options):
                    if option.dest not in known:
                        self.params.append(click.Option([option.flag, option.dest], metavar=option.metavar,
                                                        help=option.help))
                        known.add(option.dest)
            self._kinds_read = True
        return super().get_params(ctx)


@click.command("add", cls=KindOptions)
@click.argument("name", metavar="SITE")
@click.option("--inventory", type=click.Path(file_okay=False, path_type=Path),
              help="HPC, SSH or cloud site: folder with hosts.yml and group_vars/ (see inventories/example-hpc).")
@output_option
@pass_app
def add_cmd(app: App, name: str, inventory: Path | None, **values: str | None) -> None:
    """Register SITE from its inventory folder, or by its kind's options (validated; nothing is contacted)."""
    from squall.errors import InvalidInput
    from squall.sites.registration import add_site, check_site_name
    from squall.sites.registry import adders

    kinds = adders()
    chosen = [kind for kind, adder in kinds.items() if values.get(adder.option.dest) is not None]
    ways = " or ".join(["--inventory DIR", *(f"{a.option.flag} {a.option.metavar or a.option.dest.upper()}"
                                             for a in kinds.values())])
    if len(chosen) + (inventory is not None) != 1:
        raise InvalidInput(f"give {ways}: exactly one")
    mine = {option.dest for kind in chosen for option in (kinds[kind].option, *kinds[kind].options)}
    stray = [option.flag for adder in kinds.values() for option in adder.options
             if values.get(option.dest) is not None and option.dest not in mine]
    if stray:
        raise InvalidInput(f"{', '.join(stray)}: not an option of this kind of site")
    if chosen:
        check_site_name(name)
        adder = kinds[chosen[0]]
        summary = adder.add(app.store, name, values)
        said = adder.said(name, summary)
    else:
        summary = add_site(app.store, name, inventory).summary()
        said = f"added site {name} ({summary['login']}, {len(summary['partitions'])} partitions)"
    if app.json:
        app.emit(summary)
    else:
        app.say(said)
