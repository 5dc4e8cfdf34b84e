"""One module per pipeline; each exposes the same small interface, used by runners/cli.py.

    NAME: str                       # the CLI command
    HELP: str                       # one line for `twhin-data --help`
    add_arguments(parser) -> None   # the command's own flags (snake_case, each with help=)
    validate(args) -> None          # raise core.errors.ConfigError on bad values, before building
    build(p, args) -> Any           # adds transforms to `p` only (tests pass a TestPipeline)
    finish(result, args) -> dict    # after the run: write reports, return a JSON-able summary

`args` is an argparse.Namespace holding the command's flags plus the common ones from
runners/options.py (output, workers, overwrite). Beam flags never reach `args`.
"""
