"""ByteNite Local's HTTP surface: the FastAPI app (`app`), its routers (`routes`), their
dependencies (`deps`), request and response shapes and the mapping of refusals to statuses.
Routes parse, call the service layer and render; the rules live in `bytenite_nb.server.service`.
"""
