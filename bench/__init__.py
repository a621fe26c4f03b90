"""Benchmark of the instrumented server against a bare FastAPI app (``make bench``)."""
