"""One module per pipeline command; each exposes the same small interface, used by runners/launch.py
(its one-line help is in runners/commands.py).

    NAME: str                          # the CLI command
    add_arguments(parser) -> None      # the command's own flags (snake_case, each with help=)
    validate(args) -> None             # flag values only: ConfigError on a bad one, before any I/O
    plan(args, run) -> Plan            # resolves inputs (globs, footers, row counts) and derived
                                       # values into a typed plan (pipelines/plan.py); reads only
    prepare_output(plan) -> None       # refuses an existing output or, with --overwrite, clears it;
                                       # removes a failed run's temporary files
    build(p, plan) -> Any              # adds transforms to `p` only (tests pass a TestPipeline)
    finish(result, plan, elapsed_s) -> dict   # after the run: reports, a JSON-able summary

Optional:
    progress_total(plan) -> (total | None, unit)   # what the live progress counts (core/progress.py)
    rejections(summary) -> (records in, rejected)  # default: the summary's "in" and "rejected"

`args` is an argparse.Namespace holding the command's flags plus the common ones from
runners/options.py (output, workers, overwrite, log_level). Beam flags never reach `args`, and no
step writes to it: derived values live on the plan.
"""
