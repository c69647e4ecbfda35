"""`convnet-demo serve`: the live page for a room; training starts at once, Ctrl-C saves.

The page answers immediately (status "loading", then "compiling") while the worker thread
decodes the data set and compiles kernels. Two addresses are printed: the viewers' (the LAN
address with --host 0.0.0.0) and the presenter's, which carries the token and trades it for
a cookie on first use. The token and the presenter's sessions are kept in the user's cache
directory (server/credentials.py), so a restart keeps the presenter's open page working;
--new-token makes a new token and ends every session. Snapshots go to the user's data
directory (server/snapshot_files.py) unless --snapshot-dir says otherwise, and the newest
saved run of the net is offered for resuming (--resume resumes it at once). The open-file
limit is raised to the hard limit first, and the console says how many connections the
guard (server/guard.py) allows.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import webbrowser
from pathlib import Path

from engine.cli import CliError
from engine.data import add_data_argument, source_title


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
    p.add_argument("--token", help="presenter token for this run (default: the one kept in "
                                   "the cache directory since the first start, 192 random "
                                   "bits; the open presenter page stays logged in across "
                                   "restarts)")
    p.add_argument("--new-token", action="store_true",
                   help="make and keep a new presenter token: every open presenter page "
                        "becomes a viewer's until it logs in with the new one")
    p.add_argument("--snapshot-dir", default=None,
                   help="where snapshots are saved (default: the user's data directory, "
                        "$XDG_DATA_HOME or ~/.local/share, then convnet-demo/snapshots)")
    p.add_argument("--resume", action="store_true",
                   help="start from the newest snapshot saved in --snapshot-dir of the same "
                        "net (without it, the page offers it)")
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
    p.add_argument("--checkpoint-mb", type=int, default=200, metavar="MB",
                   help="memory for every run's checkpoints together, the ones the page's "
                        "scrubber looks back at and forks start from (default 200; past it "
                        "they are thinned, the first and latest of each run kept)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for the engine's parallel kernels (default: measured while "
                        "training, every minute, all cores against 1: when other programs keep "
                        "a core busy, one thread can be many times faster)")
    p.set_defaults(func=run)


def _check_args(args) -> None:
    """Fail before binding a port for mistakes that need no data: bad net, bad snapshot."""
    from engine.presets import NetSourceError, open_net
    from engine.formats.pretrained import resolve_snapshot
    from engine.formats.snapshot import SnapshotError
    if not 0 <= args.port <= 65535:
        raise CliError("--port must be in 0..65535")
    if args.token is not None and len(args.token) < 16:
        raise CliError("--token must be at least 16 characters (better: leave it out and "
                       "use the random one printed at start)")
    if args.token is not None and args.new_token:
        raise CliError("--token and --new-token exclude each other: --token gives this run's "
                       "token, --new-token makes a new random one and keeps it")
    if args.resume and args.snapshot:
        raise CliError("--resume and --snapshot exclude each other: a run starts from one "
                       "snapshot (--resume: the newest saved one of --net)")
    if args.max_connections_per_client < 1:
        raise CliError("--max-connections-per-client must be at least 1")
    if args.keep_snapshots < 1:
        raise CliError("--keep-snapshots must be at least 1")
    if not 1 <= args.checkpoint_mb <= 1_000_000:
        raise CliError("--checkpoint-mb must be in 1..1000000 (megabytes)")
    from server.hosts import pattern_problem
    for name in args.allowed_host:
        if pattern_problem(name):
            raise CliError(f"--allowed-host: {pattern_problem(name)}")
    if args.threads is not None:
        import numba
        if not 1 <= args.threads <= numba.config.NUMBA_NUM_THREADS:
            raise CliError(f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}")
    try:
        open_net(args.net)
        if args.snapshot:
            resolve_snapshot(args.snapshot)
    except (NetSourceError, SnapshotError) as exc:
        raise CliError(str(exc)) from None
    if args.data not in ("bundled", "official") and not Path(args.data).expanduser().exists():
        raise CliError(f"--data {args.data}: no such file or folder")


def run(args: argparse.Namespace) -> int:
    from server.addresses import join_url, local_only, presenter_url
    from server.app import create_app
    from server.credentials import presenter_token, state_dir
    from server.guard import raise_fd_limit
    from server.settings import Settings
    from server.snapshot_files import default_snapshot_dir
    from server.uvicorn_protocol import make_config, make_server

    _check_args(args)
    _log_to_stderr()              # before the token: a cache it cannot write is said there
    keep_in = state_dir()
    token, token_came = presenter_token(keep_in, args.token, args.new_token)
    snapshot_dir = (Path(args.snapshot_dir).expanduser() if args.snapshot_dir
                    else default_snapshot_dir())
    settings = Settings(host=args.host, port=args.port, data=args.data,
                        validation=args.validation, net=args.net, snapshot=args.snapshot,
                        resume=args.resume, token=token, state_dir=keep_in,
                        snapshot_dir=snapshot_dir,
                        start_paused=args.paused, save_on_exit=not args.no_save,
                        threads=args.threads,
                        max_connections_per_client=args.max_connections_per_client,
                        keep_snapshots=args.keep_snapshots, checkpoint_mb=args.checkpoint_mb,
                        allowed_hosts=tuple(args.allowed_host))
    was = _open_files()
    open_files, _ = raise_fd_limit()      # a laptop's 1,024 runs out with a few hundred clients
    app = create_app(settings)
    config = make_config(app, settings)
    connections = config.http.guard.limits.max_connections

    def announce(port: int) -> None:
        viewer = join_url(settings.host, port)
        presenter = presenter_url(settings.host, port, settings.token)
        net = f"snapshot {settings.snapshot}" if settings.snapshot else settings.net
        print(f"convnet-demo is serving ({net}, data: {source_title(settings.data)})\n"
              f"  viewers open:    {viewer}\n"
              f"  presenter opens: {presenter}\n"
              f"  presenter token: {TOKEN_NOTES[token_came].format(keep_in)}\n"
              f"  snapshots go to: {settings.snapshot_dir.resolve()}"
              + (" (resuming the newest saved run of this net, if any)" if settings.resume
                 else "") + "\n"
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


TOKEN_NOTES = {
    "kept": "the same as last time (kept in {}; --new-token makes a new one)",
    "new": "new, kept in {} for the next start (--new-token makes a new one)",
    "given": "--token's, for this run",
    "unsaved": "new, for this run only ({} cannot be written)",
}


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
