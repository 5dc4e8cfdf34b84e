"""Where pipelines run: the CLI and its command table, option parsing, launching one pipeline, the
`run` chain, and the runner profiles (local, dataflow/)."""
