"""``chainrule playground [--port N] [--host H] [--no-browser]``."""

from __future__ import annotations


def add_arguments(p):
    p.add_argument("--port", type=int, default=0, help="default: a free port, printed")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--idle-timeout", type=float, default=900.0,
                   help="seconds without activity after which a page's session is freed")


def run(args):
    from ..errors import ChainruleError
    from . import serve

    if not 0 <= args.port <= 65535:
        raise ChainruleError(f"--port must be from 0 to 65535, got {args.port}")
    if args.idle_timeout <= 0:
        raise ChainruleError("--idle-timeout must be positive")
    try:
        serve(args.host, args.port, open_browser=not args.no_browser,
              idle_timeout=args.idle_timeout)
    except KeyboardInterrupt:
        pass
