"""`python -m twhin_data` is the same as the `twhin-data` command."""

from twhin_data.runners.cli import main

raise SystemExit(main())
