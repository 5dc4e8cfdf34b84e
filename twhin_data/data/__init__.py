"""Bundled synthetic sample data (written by us) and the small XLM-R-layout tokenizer."""
