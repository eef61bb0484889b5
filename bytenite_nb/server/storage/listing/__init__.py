"""Filtering, ordering, paging and rendering job lists."""
