"""Persistence: SQLite store, job listing, Developer API store, user cache."""
