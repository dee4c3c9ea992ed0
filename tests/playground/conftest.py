"""A real playground server (uvicorn) on 127.0.0.1, started and stopped by the tests."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import pytest


@pytest.fixture
def start_playground():
    """``start_playground(idle_timeout=...)`` -> an object with ``url``, ``ws_url`` and
    ``app`` (whose ``state.sessions`` holds the live sessions); stopped after the test."""
    pytest.importorskip("starlette", reason='the playground extra is not installed '
                                            '(pip install -e ".[playground]")')
    uvicorn = pytest.importorskip("uvicorn")
    pytest.importorskip("websockets")
    from chainrule.playground import create_app
    from chainrule.playground.app import MAX_MESSAGE

    servers = []

    def start(idle_timeout: float = 900.0):
        app = create_app(idle_timeout=idle_timeout)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                               ws="websockets-sansio", ws_max_size=MAX_MESSAGE))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the playground server did not start in 10 s")
            time.sleep(0.02)
        servers.append((server, thread))
        return SimpleNamespace(url=f"http://127.0.0.1:{port}/", app=app,
                               ws_url=f"ws://127.0.0.1:{port}/ws")

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)
