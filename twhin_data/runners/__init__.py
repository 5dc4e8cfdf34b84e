"""Where pipelines run: the CLI, option parsing and the runner profiles (local, dataflow)."""
