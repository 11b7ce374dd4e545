"""The registry of site kinds: what each kind is called and how one of its sites is opened.

A kind registers itself at the end of its own file (``squall.sites.kinds``),
with ``register(SiteKind(...))``; a kind defined elsewhere (a plug-in, a test)
registers the same way and is then known to ``site add``, ``site list``,
``job run`` and ``gc`` like the built-in ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from squall.inventory import InventoryRules, SiteInventory
    from squall.sites.contract import Site
    from squall.store import Store

# (name, home, store, the site's stored config, its inventory if the kind reads one) -> the Site
Opener = Callable[[str, Path, "Store", dict, "SiteInventory | None"], "Site"]


@dataclass(frozen=True)
class SiteKind:
    name: str
    open: Opener  # imports what it needs itself (every kind file is loaded at start-up)
    builtin_site: str | None = None  # a site of this kind that exists without registration
    inventory: InventoryRules | None = None  # its sites are described by an inventory, under these rules


KINDS: dict[str, SiteKind] = {}


def register(kind: SiteKind) -> None:
    KINDS[kind.name] = kind


def inventory_kinds() -> dict[str, InventoryRules]:
    """The rules of every registered kind whose sites are described by an inventory."""
    return {name: kind.inventory for name, kind in KINDS.items() if kind.inventory is not None}
