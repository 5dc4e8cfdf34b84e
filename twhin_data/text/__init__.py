"""Pure text functions: normalization, hashtags, language identification (no Beam import)."""
