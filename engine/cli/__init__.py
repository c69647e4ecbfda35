"""The `convnet-demo` command line (entry point: engine.cli.main:main)."""


class CliError(Exception):
    """A user mistake: printed as one line, exit code 2, never a traceback."""
