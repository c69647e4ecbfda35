"""`convnet-demo serve`: the live page for a room; training starts at once, Ctrl-C saves.

The page answers immediately (status "loading", then "compiling") while the worker thread
decodes the data set and compiles kernels. Two addresses are printed: the viewers' (the LAN
address with --host 0.0.0.0) and the presenter's, which carries the token (a fresh random
one unless --token is given) and trades it for a cookie on first use. The open-file limit
is raised to the hard limit first, and the console says how many connections the guard
(server/guard.py) allows.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import webbrowser
from pathlib import Path

from engine.cli import CliError
from engine.data import add_data_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve", help="serve the live demo page and train while a room watches",
        description="Serve the demo page, train live, let viewers classify their own images. "
                    "Prints the viewer address and the presenter address (with its token). "
                    "Ctrl-C saves a snapshot into --snapshot-dir and stops.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; "
                        "0.0.0.0 lets a room join over the LAN)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    add_data_argument(p)
    p.add_argument("--net", default="convnetjs",
                   help="a preset name or a JSON spec file (default: convnetjs, the demo net)")
    p.add_argument("--snapshot", metavar="FILE|pretrained|pretrained:NAME",
                   help="start from this snapshot (ours or a ConvNetJS Net.toJSON() file)")
    p.add_argument("--token", help="presenter token (default: a fresh random one, 192 bits)")
    p.add_argument("--snapshot-dir", default="snapshots",
                   help="where snapshots are saved (default: ./snapshots)")
    p.add_argument("--paused", action="store_true", help="start paused")
    p.add_argument("--no-save", action="store_true", help="do not save a snapshot on exit")
    p.add_argument("--keep-snapshots", type=int, default=20, metavar="N",
                   help="snapshot files the server keeps in --snapshot-dir: after each save "
                        "older ones it wrote are deleted (default 20)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a host name (or address) the page may be opened by, beyond this "
                        "machine's own (repeatable; '*' turns the check off, e.g. behind a "
                        "proxy that checks names)")
    p.add_argument("--open", action="store_true",
                   help="open the presenter page in this machine's browser")
    p.add_argument("--max-connections-per-client", type=int, default=32, metavar="N",
                   help="connections one address may hold (default 32; a browser uses up to "
                        "6). Raise it when the room reaches the server through one NAT "
                        "address")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for the engine's parallel kernels (default: measured while "
                        "training, every minute, all cores against 1: when other programs keep "
                        "a core busy, one thread can be many times faster)")
    p.set_defaults(func=run)


def _check_args(args) -> None:
    """Fail before binding a port for mistakes that need no data: bad net, bad snapshot."""
    from server.setup import SetupError, resolve_net, resolve_snapshot
    if not 0 <= args.port <= 65535:
        raise CliError("--port must be in 0..65535")
    if args.token is not None and len(args.token) < 16:
        raise CliError("--token must be at least 16 characters (better: leave it out and "
                       "use the random one printed at start)")
    if args.max_connections_per_client < 1:
        raise CliError("--max-connections-per-client must be at least 1")
    if args.keep_snapshots < 1:
        raise CliError("--keep-snapshots must be at least 1")
    from server.hosts import pattern_problem
    for name in args.allowed_host:
        if pattern_problem(name):
            raise CliError(f"--allowed-host: {pattern_problem(name)}")
    if args.threads is not None:
        import numba
        if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
            raise CliError(f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}")
    try:
        resolve_net(args.net)
        if args.snapshot:
            resolve_snapshot(args.snapshot)
    except SetupError as exc:
        raise CliError(str(exc)) from None
    if args.data not in ("bundled", "official") and not Path(args.data).expanduser().exists():
        raise CliError(f"--data {args.data}: no such file or folder")


def run(args: argparse.Namespace) -> int:
    from server.addresses import join_url, local_only, presenter_url
    from server.app import create_app
    from server.guard import raise_fd_limit
    from server.settings import Settings, new_token
    from server.uvicorn_protocol import make_config, make_server

    _check_args(args)
    settings = Settings(host=args.host, port=args.port, data=args.data,
                        validation=args.validation, net=args.net, snapshot=args.snapshot,
                        token=args.token or new_token(),
                        snapshot_dir=Path(args.snapshot_dir).expanduser(),
                        start_paused=args.paused, save_on_exit=not args.no_save,
                        threads=args.threads,
                        max_connections_per_client=args.max_connections_per_client,
                        keep_snapshots=args.keep_snapshots,
                        allowed_hosts=tuple(args.allowed_host))
    _log_to_stderr()
    was = _open_files()
    open_files, _ = raise_fd_limit()      # a laptop's 1,024 runs out with a few hundred clients
    app = create_app(settings)
    config = make_config(app, settings)
    connections = config.http.guard.limits.max_connections

    def announce(port: int) -> None:
        viewer = join_url(settings.host, port)
        presenter = presenter_url(settings.host, port, settings.token)
        net = f"snapshot {settings.snapshot}" if settings.snapshot else settings.net
        print(f"convnet-demo is serving ({net}, data: {settings.data})\n"
              f"  viewers open:    {viewer}\n"
              f"  presenter opens: {presenter}\n"
              f"  snapshots go to: {settings.snapshot_dir.resolve()}\n"
              f"  connections:     up to {connections:,}, "
              f"{settings.max_connections_per_client} per client address (open files: "
              f"{open_files:,}" + (f", raised from {was:,}" if open_files > was else "")
              + ")\n"
              + ("  only this computer can open it: start with --host 0.0.0.0 to let the "
                 "room join\n" if local_only(settings.host) else "")
              + "Ctrl-C stops (and saves a snapshot).", flush=True)
        if args.open:
            threading.Thread(target=webbrowser.open, args=(presenter,), daemon=True).start()

    server = make_server(config, app, announce)
    try:
        server.run()
    except KeyboardInterrupt:         # uvicorn re-raises the Ctrl-C it handled gracefully
        pass
    except SystemExit:                # uvicorn exits like this when it cannot bind
        if server.started:
            raise
        raise CliError(f"could not serve on {settings.host}:{settings.port} (is the port in "
                       "use? try another --port)") from None
    worker = app.state.runtime.worker
    saved = worker.published.snapshot_file if worker is not None else None
    print("stopped" + (f"; snapshot saved to {saved}" if saved else ""), file=sys.stderr)
    return 0


def _open_files() -> int:
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _log_to_stderr() -> None:
    logger = logging.getLogger("server")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
