"""The local mock X API v2 (`twhin-data mock-api`): server.py (HTTP on 127.0.0.1, rate limits, faults)
and data.py (response bodies in the real shape)."""
