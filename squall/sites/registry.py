"""The registry of site kinds: what each kind is called and how one of its sites is opened.

A kind registers itself at the end of its own file (``squall.sites.kinds``),
with ``register(SiteKind(...))``; a kind defined elsewhere (a plug-in, a test)
registers the same way and is then known to ``site add``, ``site list``,
``job run`` and ``gc`` like the built-in ones. What only one kind knows rides
on its ``SiteKind``: its inventory rules, the options ``site add`` takes for it
(``Adder``) and the cloud listing gc reads for its sites (``cloud_listing``).
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
class AddOption:
    """One option of ``squall site add`` (``--context NAME``); its value reaches the kind's ``add`` as ``dest``."""

    flag: str
    dest: str
    help: str
    metavar: str | None = None


@dataclass(frozen=True)
class Adder:
    """How ``site add`` registers a site of a kind no inventory describes: the option that chooses the kind and
    carries its main value (``--kubernetes ORG_STACK``), its other options, and ``add(store, name, values)``,
    which validates them (exit 2 naming the option), records the site without contacting it and returns a
    summary; ``said(name, summary)`` is the line people read."""

    option: AddOption
    add: Callable[[Store, str, dict], dict]
    said: Callable[[str, dict], str]
    options: tuple[AddOption, ...] = ()


@dataclass(frozen=True)
class SiteKind:
    name: str
    open: Opener  # imports what it needs itself (every kind file is loaded at start-up)
    builtin_site: str | None = None  # a site of this kind that exists without registration
    inventory: InventoryRules | None = None  # its sites are described by an inventory, under these rules
    adder: Adder | None = None  # ``site add`` options for a kind no inventory describes
    # what gc lists in a cloud for one of its sites (name, stored config): a squall.gc.clouds TaggedInventory
    cloud_listing: Callable[[str, dict], object] | None = None


KINDS: dict[str, SiteKind] = {}


def register(kind: SiteKind) -> None:
    KINDS[kind.name] = kind


def adders() -> dict[str, Adder]:
    """The ``site add`` options of every registered kind that takes its own."""
    return {name: kind.adder for name, kind in KINDS.items() if kind.adder is not None}


def inventory_kinds() -> dict[str, InventoryRules]:
    """The rules of every registered kind whose sites are described by an inventory."""
    return {name: kind.inventory for name, kind in KINDS.items() if kind.inventory is not None}
