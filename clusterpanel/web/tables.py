"""Sorting and paging of the pages' list tables, from the query string.

``?sort=name&dir=desc&page=2``: ``sort`` names one of the table's sortable columns (anything else
falls back to the table's default), ``dir`` is ``asc`` or ``desc``, ``page`` counts from 1 (a
page that is no number or past the end shows the nearest page). A page with two tables gives one
of them a ``prefix``, so that its parameters read ``static_sort=user&static_page=2``.

Header and pager links are plain links that keep every other parameter (filters) of the request,
so sorting and paging work without JavaScript.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Page, Paginator
from django.db.models import F, OrderBy, QuerySet
from django.http import HttpRequest, QueryDict

# Rows per page. Read when a table is built, so tests may lower it.
PAGE_SIZE = 50

ASC, DESC = "asc", "desc"


@dataclass(frozen=True)
class Column:
    """A table column. Sortable when it has a ``key`` and either ``fields`` (ORM paths the
    database orders by) or ``value`` (a Python sort key per row, for computed values)."""

    label: str
    key: str = ""
    fields: tuple[str, ...] = ()
    value: Callable[[Any], Any] | None = None
    css: str = ""

    @property
    def sortable(self) -> bool:
        return bool(self.key) and bool(self.fields or self.value)


@dataclass(frozen=True)
class Header:
    """One ``<th>``: its label, the link that sorts by it and how it is sorted now."""

    label: str
    css: str
    url: str | None
    direction: str | None  # "asc"/"desc" for the current sort column, else None

    @property
    def aria_sort(self) -> str:
        if self.direction is None:
            return ""
        return "ascending" if self.direction == ASC else "descending"


def _sort_key(item: Any) -> Any:
    """A key that never compares None with a value: empty values (None, "") sort after others."""
    if isinstance(item, tuple):
        return tuple(_sort_key(part) for part in item)
    return (item is None or item == "", "" if item is None else item)


def _is_empty(item: Any) -> bool:
    return item is None or item == ""


def _ordering(rows: QuerySet[Any], name: str, descending: bool) -> OrderBy:
    """``name`` ascending or descending, empty values last. A column that cannot be empty is
    ordered plainly: ``DESC NULLS LAST`` is not the order of a backward index scan, so on
    PostgreSQL it would sort the whole table instead of reading the first page off an index."""
    try:
        nullable = rows.model._meta.get_field(name).null
    except FieldDoesNotExist:  # an annotation or a relation's field
        nullable = True
    if not nullable:
        return F(name).desc() if descending else F(name).asc()
    return F(name).desc(nulls_last=True) if descending else F(name).asc(nulls_last=True)


class Table:
    """The sort order and page a request asks of one table."""

    def __init__(
        self,
        request: HttpRequest,
        columns: Sequence[Column],
        default: str,
        default_dir: str = ASC,
        prefix: str = "",
        fragment: str = "",
    ) -> None:
        self.columns = list(columns)
        self.prefix = prefix
        self.fragment = f"#{fragment}" if fragment else ""
        self.params: QueryDict = request.GET
        by_key = {c.key: c for c in self.columns if c.sortable}
        if default not in by_key:
            raise ValueError(f"default sort column {default!r} is not sortable")
        asked = self.params.get(self._name("sort"), "")
        self.sort = asked if asked in by_key else default
        self.column = by_key[self.sort]
        direction = self.params.get(self._name("dir"), "")
        fallback = default_dir if self.sort == default else ASC
        self.direction = direction if direction in (ASC, DESC) else fallback
        self.page_size = PAGE_SIZE
        self.page: Page[Any] | None = None

    def _name(self, parameter: str) -> str:
        return f"{self.prefix}{parameter}"

    def _url(self, **changes: str | None) -> str:
        query = self.params.copy()
        for parameter, value in changes.items():
            name = self._name(parameter)
            if value is None:
                query.pop(name, None)
            else:
                query[name] = value
        encoded = query.urlencode()
        return f"?{encoded}{self.fragment}" if encoded else f"?{self.fragment}"

    # --- rows -----------------------------------------------------------------------------------

    def order(self, rows: QuerySet[Any] | Iterable[Any]) -> QuerySet[Any] | list[Any]:
        """The rows in the asked order: by the database when the column names fields and the
        rows are a queryset, else in Python (rows are then evaluated). Ties keep the rows'
        own order, so a table's default order breaks them."""
        column, descending = self.column, self.direction == DESC
        if isinstance(rows, QuerySet) and column.fields:
            ordering = [_ordering(rows, name, descending) for name in column.fields]
            # Ties keep the queryset's own order (or the model's), then the primary key.
            own = list(rows.query.order_by or rows.model._meta.ordering)
            return rows.order_by(*ordering, *own, "pk")
        items = list(rows)
        fields = column.fields

        def value(row: Any) -> Any:
            if column.value is not None:
                return column.value(row)
            return tuple(_attribute(row, name) for name in fields)

        # Rows without a value come last in both directions.
        filled = [row for row in items if not _is_empty(value(row))]
        empty = [row for row in items if _is_empty(value(row))]
        filled.sort(key=lambda row: _sort_key(value(row)), reverse=descending)
        return filled + empty

    def paginate(self, rows: QuerySet[Any] | Sequence[Any]) -> Page[Any]:
        """The asked page of ``rows`` (the nearest one when the number is off)."""
        paginator = Paginator(rows, self.page_size)
        self.page = paginator.get_page(self.params.get(self._name("page")))
        return self.page

    # --- links ----------------------------------------------------------------------------------

    @property
    def headers(self) -> list[Header]:
        headers = []
        for column in self.columns:
            if not column.sortable:
                headers.append(Header(column.label, column.css, None, None))
                continue
            current = column.key == self.sort
            direction = self.direction if current else None
            flipped = DESC if direction == ASC else ASC
            url = self._url(sort=column.key, dir=flipped, page=None)
            headers.append(Header(column.label, column.css, url, direction))
        return headers

    @property
    def pages(self) -> dict[str, Any] | None:
        """What the pager shows, or None when everything fits on one page."""
        page = self.page
        if page is None or page.paginator.num_pages <= 1:
            return None
        return {
            "number": page.number,
            "count": page.paginator.num_pages,
            "first_row": page.start_index(),
            "last_row": page.end_index(),
            "rows": page.paginator.count,
            "previous": self._url(page=str(page.number - 1)) if page.has_previous() else None,
            "next": self._url(page=str(page.number + 1)) if page.has_next() else None,
            "first": self._url(page="1") if page.number > 2 else None,
            "last": (
                self._url(page=str(page.paginator.num_pages))
                if page.number < page.paginator.num_pages - 1
                else None
            ),
        }

    @property
    def state(self) -> dict[str, str]:
        """The sort parameters as they are now, for a filter form to carry as hidden fields."""
        return {self._name("sort"): self.sort, self._name("dir"): self.direction}


def _attribute(row: Any, path: str) -> Any:
    value = row
    for part in path.split("__"):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
        if value is None:
            return None
    return value
