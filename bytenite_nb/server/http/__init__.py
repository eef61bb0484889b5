"""ByteNite Local's HTTP surface: the FastAPI app, routes, request/response models, errors."""
