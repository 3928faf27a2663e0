"""Benchmarks, run as scripts from the project root (see signaling.py); a package so daphne can import stock_asgi."""
