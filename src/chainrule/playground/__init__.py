"""``chainrule playground``: a local web app that trains a small network live.

The server (Starlette on uvicorn, the ``playground`` extra) trains with chainrule's own
engine and ``Trainer`` and streams each epoch to the page over a WebSocket: losses,
accuracy and a confusion matrix, every weight and its gradient on the links, every
neuron's output over the plane. It listens on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

from .config import PlaygroundConfig

__all__ = ["PlaygroundConfig", "create_app", "serve"]


def create_app(idle_timeout: float = 900.0):
    from .app import create_app as _create

    return _create(idle_timeout=idle_timeout)


def serve(host: str = "127.0.0.1", port: int = 0, open_browser: bool = True,
          idle_timeout: float = 900.0, ready=None):
    """Run the playground until interrupted. ``port=0`` picks a free port. The address is
    printed (and given to ``ready(url)`` if set) once the server listens."""
    import socket
    import webbrowser

    try:
        import uvicorn
    except ImportError:
        from ..errors import ChainruleError

        raise ChainruleError('the playground needs uvicorn: pip install "chainrule[playground]"'
                             ) from None
    from .app import MAX_MESSAGE

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    config = uvicorn.Config(create_app(idle_timeout), log_level="warning",
                            ws_max_size=MAX_MESSAGE, ws="websockets-sansio",
                            lifespan="off")
    server = uvicorn.Server(config)
    print(f"chainrule playground: {url}  (Ctrl+C stops it)", flush=True)
    if ready is not None:
        ready(url)
    if open_browser:
        webbrowser.open(url)
    server.run(sockets=[sock])
