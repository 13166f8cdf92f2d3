"""Remove everything neutrino left on the host: namespaces and root-namespace links with our names."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from neutrino.kernel import links, netns
from neutrino.kernel.names import ALL_NAMESPACE_PREFIXES, is_our_link, is_our_namespace


@dataclass
class Removed:
    namespaces: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def select_namespaces(names: Iterable[str], prefixes: tuple[str, ...] = ALL_NAMESPACE_PREFIXES) -> list[str]:
    """The namespaces among ``names`` that carry one of ``prefixes`` (all of them are ours)."""
    chosen = (p for p in prefixes if is_our_namespace(p + "x"))  # never widen beyond our own prefixes
    allowed = tuple(chosen)
    return sorted(n for n in set(names) if allowed and is_our_namespace(n, allowed))


def select_links(names: Iterable[str]) -> list[str]:
    """The links among ``names`` (in our own namespace) that follow neutrino's device naming."""
    return sorted(n for n in set(names) if is_our_link(n))


def cleanup(prefixes: tuple[str, ...] = ALL_NAMESPACE_PREFIXES, root_links: bool = True) -> Removed:
    """Remove our namespaces (their links go with them), then our links in this process's namespace."""
    removed = Removed()
    for name in select_namespaces(netns.list_namespaces(), prefixes):
        if netns.remove_namespace(name):
            removed.namespaces.append(name)
    if root_links:
        for name in select_links(link.name for link in links.list_links(None)):
            if links.remove_link(None, name):
                removed.links.append(name)
    return removed
