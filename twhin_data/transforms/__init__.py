"""Beam PTransforms, one per concept; the row logic they wrap lives in pure functions elsewhere."""
