"""The routers, one module per resource, each a module-level ``router = APIRouter()``
(`info` also has the Developer API's ``dev_router``); `bytenite_nb.server.http.app` mounts
them. A route module imports no other route module: shared pieces live in ``http/``."""
