"""Prints the schema reference as Markdown."""

from twhin_data.schemas import markdown

print(markdown())
