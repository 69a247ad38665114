"""The HTTP edge: the FastAPI app, routes that translate HTTP to the hook pipeline and back,
error answers, and JWT authentication (``auth/``)."""
