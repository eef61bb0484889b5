"""The longest string each request field accepts, in characters.

Every string of every request model (`models`) carries one of these as its ``maxLength``, so
the OpenAPI document states it and a longer value is a 400 naming the field before anything
is stored. They are far above anything a person or a notebook sends (a job name of a
thousand characters, a description of sixteen thousand) and keep one request from making
every later job list huge. Free JSON objects (job params, data source params) have no
per-string limit: the request body as a whole is capped (``ServerConfig.max_request_bytes``,
1 MiB).
"""

from __future__ import annotations

#: Ids: ``jobId``, ``templateId``, task ids, a secret's ``id`` (ids are at most 128 characters).
MAX_ID = 128
#: A job's or a secret's ``name``.
MAX_NAME = 1024
#: A job's ``description``.
MAX_DESCRIPTION = 16384
#: Words from a fixed vocabulary: descriptors, filter conditions, levels, services, secret types.
MAX_WORD = 64
#: A filter's ``field`` and a list's ``orderBy``.
MAX_FIELD = 1024
#: A timestamp (``expiresAt``).
MAX_TIMESTAMP = 64
#: An int64 sent as a string: ``-9223372036854775808`` has 20 characters.
MAX_INT64_TEXT = 20
#: An API key (``POST /v1/auth/access_token``).
MAX_API_KEY = 1024
#: A secret's ``accessKey``.
MAX_ACCESS_KEY = 4096
#: A secret's ``secretKey``: it becomes an environment variable, and Linux refuses a single
#: variable over 128 KiB.
MAX_SECRET_KEY = 65536
#: The deprecated ``params.preset``.
MAX_PRESET = 1024
