"""List queries as Neutron parses them: fields, filters, sorting, pagination and its links.

Filtering here works on the service's dicts, so every filterable attribute behaves the same
(repeated values are OR, booleans accept True/true, ``tags``/``tags-any``/``not-tags``/
``not-tags-any`` take comma lists). This pass is the one that defines the result: the list
query (:mod:`neutrino.services.listing`) does the same in SQL so that it reads only a page of
rows, and every row it returns still passes :func:`matches`; :func:`sort_items` and
:func:`paginate` remain for services without a list query and sort keys SQL cannot order by.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from neutrino.api import validators as v
from neutrino.api.attributes import TAG_FILTERS, Resource
from neutrino.errors import HTTPBadRequest, MarkerNotFound

LOG = logging.getLogger(__name__)
CONTROL_KEYS = ("fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse")


@dataclass
class ListQuery:
    fields: list[str] = field(default_factory=list)
    filters: dict[str, list[Any]] = field(default_factory=dict)
    sorts: list[tuple[str, bool]] = field(default_factory=list)  # (key, ascending)
    limit: int = 0
    marker: str | None = None
    page_reverse: bool = False


def _filter_converter(res: Resource, key: str) -> Any:
    attr = res.attrs[key]
    if attr.convert_filter is not None:
        return attr.convert_filter
    if attr.convert is v.to_boolean:
        return v.to_boolean
    if attr.convert in (v.to_int, v.to_int_or_none):
        return v.to_int
    if attr.convert in CANONICAL:  # Neutron converts filter values as it converts input
        return attr.convert
    return None


# Converters that only canonicalise (and leave what they do not recognise as it is): a filter
# value goes through them too, or "FD00::7" or "Web" would never match what was stored.
CANONICAL = (v.to_lower, v.to_canonical_ip, v.to_canonical_cidr, v.to_mac_if_valid)


def pagination_max_limit(value: str) -> int:
    """``[DEFAULT] pagination_max_limit`` as Neutron's api_common reads it: "infinite" or a
    negative number is no cap (0 here); 0 or anything not a number is refused with a warning
    and means no cap too."""
    if str(value).strip().lower() == "infinite":
        return 0
    try:
        limit = int(value)
        if limit == 0:
            raise ValueError
    except ValueError:
        LOG.warning("Invalid value for pagination_max_limit: %s. It should be an integer greater to 0", value)
        return 0
    return max(limit, 0)


def parse(res: Resource, params: list[tuple[str, str]], max_limit: int = 0,
          hidden: frozenset[str] | set[str] = frozenset()) -> ListQuery:
    """``hidden``: attributes the policy hides from this caller (provider:*, binding:* for
    non-admins); they are not filterable or sortable, or filtering would reveal them."""
    q = ListQuery()
    sort_keys: list[str] = []
    sort_dirs: list[str] = []
    for key, value in params:
        if key == "fields":
            q.fields.extend(f for f in value.split(",") if f)
        elif key == "sort_key":
            sort_keys.append(value)
        elif key == "sort_dir":
            sort_dirs.append(value)
        elif key == "limit":
            q.limit = _parse_limit(value)
        elif key == "marker":
            q.marker = value
        elif key == "page_reverse":
            q.page_reverse = _bool_param("page_reverse", value)
        else:
            q.filters.setdefault(key, []).append(_convert_filter(res, key, value, hidden))
    q.sorts = _parse_sorts(res, sort_keys, sort_dirs, hidden)
    if max_limit > 0:  # Neutron's get_limit_and_marker: min(max_limit, limit) or max_limit
        q.limit = min(max_limit, q.limit) or max_limit
    return q


def _bool_param(name: str, value: str) -> bool:
    try:
        return v.to_boolean(value)
    except v.ConversionError as exc:
        raise HTTPBadRequest(msg=f"Invalid input for {name}. Reason: {exc}.") from None


def _parse_limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        raise HTTPBadRequest(msg=f"Limit must be an integer 0 or greater and not '{value}'") from None
    if limit < 0:
        raise HTTPBadRequest(msg=f"Limit must be an integer 0 or greater and not '{value}'")
    return limit


def _convert_filter(res: Resource, key: str, value: str, hidden: frozenset[str] | set[str]) -> Any:
    if key in TAG_FILTERS and "tags" in res.attrs:
        return value
    if key in res.extra_filters:
        return value
    attr = res.attrs.get(key)
    if attr is None or not attr.filter or key in hidden:  # is_filter, shown or not (a subnet's shared)
        raise HTTPBadRequest(msg=f"[{key}] is invalid attribute for filtering")
    conv = _filter_converter(res, key)
    if conv is None:
        return value
    try:
        return conv(value)
    except v.ConversionError as exc:
        raise HTTPBadRequest(msg=f"Invalid input for {key}. Reason: {exc}.") from None


def _parse_sorts(res: Resource, keys: list[str], dirs: list[str],
                 hidden: frozenset[str] | set[str]) -> list[tuple[str, bool]]:
    if len(keys) != len(dirs) and dirs:
        raise HTTPBadRequest(msg="The number of sort_keys and sort_dirs must be same")
    sorts = []
    for i, key in enumerate(keys):
        attr = res.attrs.get(key)
        def sortable(name: str, a: Any) -> bool:
            return bool(a.sort and a.visible and name not in hidden)

        if attr is None or not sortable(key, attr):
            valid = sorted(k for k, a in res.attrs.items() if sortable(k, a))
            raise HTTPBadRequest(msg=f"{key} is an invalid attribute for sort_keys. Valid keys: {valid}")
        direction = dirs[i] if dirs else "asc"
        if direction not in ("asc", "desc"):
            raise HTTPBadRequest(msg=f"{direction} is an invalid value for sort_dir, valid value is 'asc' and 'desc'")
        sorts.append((key, direction == "asc"))
    return sorts


# ---------------------------------------------------------------- applying


def _tags_match(item_tags: list[str], key: str, wanted: list[str]) -> bool:
    groups = [set(w.split(",")) for w in wanted]
    have = set(item_tags or [])
    if key == "tags":
        return all(g <= have for g in groups)
    if key == "tags-any":
        return any(g & have for g in groups)
    if key == "not-tags":
        return not all(g <= have for g in groups)
    return not any(g & have for g in groups)  # not-tags-any


def _value_match(actual: Any, wanted: list[Any]) -> bool:
    if isinstance(actual, list):
        return any(w in actual or str(w) in [str(a) for a in actual] for w in wanted)
    if actual is None:
        return any(w in (None, "", "None") for w in wanted)
    return any(actual == w or str(actual) == str(w) for w in wanted)


def matches(item: dict[str, Any], filters: dict[str, list[Any]], special: dict[str, Any]) -> bool:
    for key, wanted in filters.items():
        if key in special:
            if not special[key](item, wanted):
                return False
        elif key in TAG_FILTERS:
            if not _tags_match(item.get("tags", []), key, wanted):
                return False
        elif key == "tenant_id":
            if not _value_match(item.get("project_id"), wanted):
                return False
        elif not _value_match(item.get(key), wanted):
            return False
    return True


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def sort_items(items: list[dict[str, Any]], sorts: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    keys = list(sorts)
    if not any(k == "id" for k, _ in keys):
        keys.append(("id", keys[-1][1] if keys else True))
    out = list(items)
    for key, asc in reversed(keys):
        src = "project_id" if key == "tenant_id" else key
        out.sort(key=lambda i: _sort_value(i.get(src)), reverse=not asc)
    return out


def paginate(items: list[dict[str, Any]], q: ListQuery) -> list[dict[str, Any]]:
    """Slice a sorted list after ``marker`` (or before it, with page_reverse)."""
    if q.page_reverse:
        items = list(reversed(items))
    if q.marker:
        ids = [i["id"] for i in items]
        if q.marker not in ids:
            raise MarkerNotFound(marker=q.marker)
        items = items[ids.index(q.marker) + 1:]
    if q.limit:
        items = items[: q.limit]
    if q.page_reverse:
        items = list(reversed(items))
    return items


def links(
    base_url: str, params: list[tuple[str, str]], page: list[dict[str, Any]], q: ListQuery
) -> list[dict[str, str]]:
    """Neutron's ``<collection>_links``, exactly as its api_common builds them: "next" unless a
    forward page came back short, "previous" unless a reverse page did (so a first full page
    has both); markers are the page's last and first ids."""
    if not q.limit:
        return []
    kept = [(k, v_) for k, v_ in params if k != "marker"]
    out = []
    if not (len(page) < q.limit and not q.page_reverse):
        nxt = [(k, v_) for k, v_ in kept if k != "page_reverse"] + ([("marker", page[-1]["id"])] if page else [])
        out.append({"rel": "next", "href": f"{base_url}?{urlencode(nxt)}"})
    if not (len(page) < q.limit and q.page_reverse):
        prev = [(k, v_) for k, v_ in kept if k != "page_reverse"] + ([("marker", page[0]["id"])] if page else [])
        out.append({"rel": "previous", "href": f"{base_url}?{urlencode(prev + [('page_reverse', 'True')])}"})
    return out
