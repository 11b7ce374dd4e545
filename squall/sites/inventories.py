"""Where site inventories are found (``$SQUALL_INVENTORIES``, ``./inventories``, the project's) and how a
site's name becomes its inventory: the one registered in the store, else the first found by name in the
search path (registered only when the caller asks: enrolment, a job submitted there)."""

from __future__ import annotations

import os
from pathlib import Path

from squall.errors import NotFound
import squall.sites.kinds  # noqa: F401 - registers the built-in kinds, whose rules inventories follow
from squall.inventory import SiteInventory, find_inventory, load_inventory
from squall.project import project_dir
from squall.sites.registry import inventory_kinds
from squall.store import Store


def inventory_search_path() -> list[Path]:
    paths = [Path(p) for p in os.environ.get("SQUALL_INVENTORIES", "").split(os.pathsep) if p]
    return paths + [Path.cwd() / "inventories", project_dir() / "inventories"]


def load_site_inventory(name: str, folder: Path) -> SiteInventory:
    """A site's inventory folder read under the rules of the registered kinds."""
    return load_inventory(name, folder, inventory_kinds())


def resolve_site(store: Store, name: str, register: bool = False) -> SiteInventory:
    """The inventory of a registered site, or of one found in the inventory search path (registered then
    only if ``register``: looking at a site changes nothing)."""
    registered = {n: (kind, config) for n, kind, config in store.sites()}
    if name in registered and registered[name][1].get("inventory"):
        return load_site_inventory(name, Path(registered[name][1]["inventory"]))
    folder = find_inventory(name, inventory_search_path())
    if folder is None:
        raise NotFound(
            f"site {name!r}: no inventory registered or found in {', '.join(map(str, inventory_search_path()))}",
            hint=f"squall site add {name} --inventory DIR",
        )
    inventory = load_site_inventory(name, folder)
    if register:
        store.set_site(name, inventory.vars.squall_kind, {"inventory": str(inventory.folder)})
    return inventory


def found_inventories() -> dict[str, Path]:
    """Site inventories in the search path (the first of each name wins), registered or not."""
    found: dict[str, Path] = {}
    for root in inventory_search_path():
        if root.is_dir():
            for folder in sorted(root.iterdir()):
                if (folder / "hosts.yml").is_file():
                    found.setdefault(folder.name, folder)
    return found
