"""ByteNite Local: the ByteNite Customer API served and executed on this machine.

``create_app(ServerConfig(...))`` builds the FastAPI app; `bytenite_nb.local.LocalServer`
starts one in the background; ``bytenite-nb serve`` runs one in the foreground.
Modules: ``config`` (settings), ``app``/``customer`` (routes), ``store`` (SQLite),
``broker`` (events), ``runner`` (job state machine), ``auth``, ``errors``, ``protojson``,
``query`` (filters/pagination), and the execution side: ``pipeline``, ``executors``,
``datasources``, ``registry``, ``apps/``.
"""
