"""The `convnet-demo` command line (entry point: engine.cli.main:main).
May import: engine.values, engine.fsutil, engine.threads, engine.calculator, engine.spec,
engine.presets, engine.net, engine.optim, engine.data, engine.train, engine.formats,
engine.bench."""


class CliError(Exception):
    """A user mistake: printed as one line, exit code 2, never a traceback."""
