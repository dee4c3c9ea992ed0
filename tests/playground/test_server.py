"""The playground server on 127.0.0.1: its WebSocket protocol, caps and freed sessions."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import time
import urllib.request
import weakref

import pytest

from chainrule.playground.data import MAX_UPLOAD_BYTES


def _connect(server):
    from websockets.sync.client import connect

    return connect(server.ws_url, max_size=None, open_timeout=10)


def _receive(ws, kind, timeout=20.0, where=lambda m: True):
    deadline = time.monotonic() + timeout
    while True:
        m = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if m["type"] == kind and where(m):
            return m


def test_settings_start_a_session_that_steps_and_streams(start_playground):
    server = start_playground()
    with _connect(server) as ws:
        ws.send(json.dumps({"type": "config", "config": {"epochs": 50}}))
        session = _receive(ws, "session")
        assert session["classes"] == 2 and session["command"].startswith("chainrule train")
        first = _receive(ws, "frame")
        assert first["epoch"] == 0 and not first["playing"]
        ws.send(json.dumps({"type": "step"}))
        assert _receive(ws, "frame", where=lambda m: m["epoch"] == 1)["train_loss"] > 0
        assert list(server.app.state.sessions) == [session["id"]]
        with urllib.request.urlopen(f"{server.url}export/{session['id']}/config") as r:
            exported = json.load(r)
        assert exported["command"] == session["command"] and exported["reproduces"]
        with urllib.request.urlopen(f"{server.url}export/{session['id']}/checkpoint") as r:
            assert r.read(2) == b"PK"  # a zip: structure.json and .npy arrays
        with urllib.request.urlopen(f"{server.url}player/{session['id']}/0/1") as r:
            page = r.read().decode()
        assert "layer 1, neuron 2: Tanh of w.x + b" in page
    _wait_until(lambda: not server.app.state.sessions)


@pytest.mark.parametrize("message, error", [
    ("not json", "messages must be JSON"),
    ('{"type": "config", "config": {"lr": "__import__(\'os\')"}}', "lr: expected a number"),
    ('{"type": "step"}', "send the settings first"),
    ('{"type": "eval", "code": "1+1"}', "send the settings first"),
    ('{"type": "upload", "text": "1,2\\n"}', "line 1: expected 3 columns"),
])
def test_bad_messages_get_one_clear_error(start_playground, message, error):
    server = start_playground()
    with _connect(server) as ws:
        ws.send(message)
        assert _receive(ws, "error")["message"].startswith(error)


def test_an_oversized_message_is_refused_by_the_server(start_playground):
    from websockets.exceptions import ConnectionClosed

    server = start_playground()
    with _connect(server) as ws:
        ws.send(json.dumps({"type": "upload", "text": "0,0,0\n" * (MAX_UPLOAD_BYTES // 2)}))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                ws.recv(timeout=10)
        assert info.value.rcvd.code == 1009  # message too big


def _wait_until(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_idle_and_closed_sessions_are_freed(start_playground):
    server = start_playground(idle_timeout=1.0)

    def training_threads():
        return [t for t in threading.enumerate() if t.name.startswith("playground-")]

    with _connect(server) as ws:
        ws.send(json.dumps({"type": "config", "config": {}}))
        _receive(ws, "session")
        assert len(server.app.state.sessions) == 1
        assert "without activity" in _receive(ws, "error", timeout=5)["message"]
    _wait_until(lambda: not server.app.state.sessions)
    gone = []
    for _ in range(25):  # many pages come and go: nothing stays behind
        with _connect(server) as ws:
            ws.send(json.dumps({"type": "config", "config": {"hidden": [8, 8, 8],
                                                             "activations": ["relu"] * 3}}))
            _receive(ws, "frame")
            gone += [weakref.ref(s) for s in server.app.state.sessions.values()]
    _wait_until(lambda: not server.app.state.sessions)
    _wait_until(lambda: not training_threads())
    assert len(gone) == 25  # and their memory is let go:
    _wait_until(lambda: gc.collect() >= 0 and all(ref() is None for ref in gone))


def test_the_command_listens_on_loopback_and_prints_its_address():
    pytest.importorskip("uvicorn")
    proc = subprocess.Popen([sys.executable, "-m", "chainrule", "playground", "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("chainrule playground: http://127.0.0.1:")
        url = line.split()[2]
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(url) as r:
                    assert "chainrule playground" in r.read().decode()
                    assert "connect-src 'self'" in r.headers["Content-Security-Policy"]
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)


def test_sessions_are_capped(start_playground, monkeypatch):
    from chainrule.playground import app

    monkeypatch.setattr(app, "MAX_SESSIONS", 1)
    server = start_playground()
    with _connect(server) as first, _connect(server) as second:
        first.send(json.dumps({"type": "config", "config": {}}))
        _receive(first, "session")
        second.send(json.dumps({"type": "config", "config": {}}))
        assert "1 sessions are open already" in _receive(second, "error")["message"]
