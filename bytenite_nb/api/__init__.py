"""The ByteNite Customer API client: no Jupyter, no pandas at import time.

Public names: :class:`Client`, :func:`connect`, :class:`Job`, the event tools
(:class:`EventStream`, :class:`JobSnapshot`, :class:`JobWatcher`, :func:`decode_events`),
the records in :mod:`~bytenite_nb.api.models`, and the exception tree in
:mod:`~bytenite_nb.api.errors`.
"""

from __future__ import annotations

from bytenite_nb.api.client import Client, Filter, connect
from bytenite_nb.api.config import Settings, resolve_settings, save_config
from bytenite_nb.api.decoding import Event, decode_events
from bytenite_nb.api.errors import (
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ByteniteError,
    ByteniteWarning,
    ConfigurationError,
    ConflictError,
    EmptyResultsError,
    InputError,
    InternalServerError,
    JobFailedError,
    MissingCredentialsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResultsNotReadyError,
    UnprocessableEntityError,
    WaitTimeoutError,
)
from bytenite_nb.api.events import EventStream
from bytenite_nb.api.jobs import Job
from bytenite_nb.api.models import (
    DataSourceInfo,
    LogEntry,
    Pagination,
    ResultFile,
    Secret,
    TaskInfo,
    Template,
)
from bytenite_nb.api.snapshot import JobSnapshot
from bytenite_nb.api.watcher import JobWatcher

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ByteniteError",
    "ByteniteWarning",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "DataSourceInfo",
    "EmptyResultsError",
    "Event",
    "EventStream",
    "Filter",
    "InputError",
    "InternalServerError",
    "Job",
    "JobFailedError",
    "JobSnapshot",
    "JobWatcher",
    "LogEntry",
    "MissingCredentialsError",
    "NotFoundError",
    "Pagination",
    "PermissionDeniedError",
    "RateLimitError",
    "ResultFile",
    "ResultsNotReadyError",
    "Secret",
    "Settings",
    "TaskInfo",
    "Template",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "connect",
    "decode_events",
    "resolve_settings",
    "save_config",
]
