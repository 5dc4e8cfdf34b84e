"""Shared building blocks: error taxonomy, stable hashing, file helpers (no Beam transforms)."""
