"""Integration tests: real ByteNite Local servers over loopback, never a mock of our own.

Grouped by what a test exercises (not by how it reaches it):

- ``client/``: the Python client (`bytenite_nb.api`) against a server.
- ``server/``: ByteNite Local's HTTP API and its life, through plain requests: errors, auth,
  events, jobs, uploads and data sources, the Developer API, secrets, start/stop, restarts,
  idle stop, conformance to its OpenAPI document.
- ``pipeline/``: how jobs run: app and engine folders and their runtime contract, the local and
  Dask executors, timeouts, retries, aborts and kills, preloaded modules; through HTTP or by
  calling the pipeline directly.
- ``magics/``: ``%bytenite`` in an IPython shell or a real kernel.
- ``cli/``: the ``bytenite-nb`` command line (the Dev CLI commands).
"""
