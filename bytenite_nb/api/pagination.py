"""Lazy limit/offset pagination: one request per page, only when the caller gets that far."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from bytenite_nb.api.models import Pagination

__all__ = ["Page", "paginate"]

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing: its items and the server's pagination block."""

    items: list[T]
    pagination: Pagination


#: ``fetch(offset, limit) -> Page``
PageFetcher = Callable[[int, int], Page[T]]


def paginate(
    fetch: PageFetcher[T], *, page_size: int = 100, limit: int | None = None
) -> Iterator[T]:
    """Yield items page by page until the server says there is no next page.

    ``limit`` caps the total number of items (the last request asks only for what is left).
    Stops on an empty page too, so a server that never sets ``hasNext`` cannot loop forever.
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    offset = 0
    remaining = limit
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        page = fetch(offset, size)
        items = page.items[:size]
        yield from items
        offset += len(page.items)
        if remaining is not None:
            remaining -= len(items)
        total = page.pagination.total
        if (
            not page.items
            or not page.pagination.has_next
            or (total is not None and offset >= total)
        ):
            return
