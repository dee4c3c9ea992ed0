"""The playground's web app: Starlette routes and one WebSocket per open page.

A page opens ``/ws`` and sends its settings; the server starts a ``Session`` (training
in a thread with the real engine) and streams frames to the page while it trains, at
most 20 a second, only when something changed. The page's buttons are messages on the
same socket. New settings that only change how the network trains (the session's
``LIVE`` ones) take hold in the running session; others start a new one. A session
ends when its page closes, or after ``idle_timeout`` seconds without a message from
it, and everything it held is let go.

Nothing the user types is evaluated: messages are JSON with a fixed set of types, and
settings go through ``PlaygroundConfig.parse``. Messages are capped in size
(``MAX_MESSAGE``) by the server before they are parsed; a CSV upload is parsed strictly.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources

from ..errors import ChainruleError
from .config import DATA_FILE, ConfigError, PlaygroundConfig
from .data import MAX_UPLOAD_BYTES, parse_csv
from .session import Session

MAX_MESSAGE = 2 * MAX_UPLOAD_BYTES  # bytes of one WebSocket message (a CSV upload, quoted)
SEND_INTERVAL = 0.03  # seconds between checks for a new frame
MAX_SESSIONS = 32  # pages training at once; each holds a thread and its data
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
       "img-src data: blob:; connect-src 'self'")


def _missing(name):
    raise ChainruleError(f"the playground needs {name}: pip install \"chainrule[playground]\"")


def create_app(idle_timeout: float = 900.0):
    """The Starlette application. ``app.state.sessions`` maps id -> live ``Session``."""
    try:
        from starlette.applications import Starlette
        from starlette.responses import HTMLResponse, JSONResponse, Response
        from starlette.routing import Route, WebSocketRoute
        from starlette.websockets import WebSocketDisconnect
    except ImportError:
        _missing("Starlette")

    page = resources.files(__package__).joinpath("page.html").read_text("utf-8")
    sessions: dict[str, Session] = {}
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-store"}

    async def index(request):
        return HTMLResponse(page, headers=headers)

    def _session(request):
        session = sessions.get(request.path_params["sid"])
        if session is None:
            raise ChainruleError("this session has ended: reload the playground")
        return session

    async def player(request):
        try:
            session = _session(request)
            layer, neuron = (_int(request.path_params[k]) for k in ("layer", "neuron"))
            html = await asyncio.to_thread(session.neuron_player, layer, neuron)
        except ChainruleError as e:
            return HTMLResponse(f"<p>{_escape(str(e))}</p>", status_code=404, headers=headers)
        return HTMLResponse(html, headers=headers)

    async def export_config(request):
        try:
            session = _session(request)
        except ChainruleError as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        info = session.export_info()
        return JSONResponse({
            "run_config": session.config.run_config("runs/playground").to_dict(),
            "playground": session.config.to_dict(), **info,
            "reproduces": not info["differences"],
        }, headers={"Content-Disposition": 'attachment; filename="run_config.json"'})

    async def export_data(request):
        try:
            session = _session(request)
        except ChainruleError as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        return Response(session.data_csv(), media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{DATA_FILE}"'})

    async def export_checkpoint(request):
        try:
            session = _session(request)
            body = await asyncio.to_thread(session.checkpoint_bytes)
        except ChainruleError as e:
            return JSONResponse({"error": str(e)}, status_code=404)
        return Response(body, media_type="application/zip", headers={
            "Content-Disposition": 'attachment; filename="playground.crk"'})

    async def socket(ws):
        await ws.accept()
        state = {"session": None, "upload": None, "sent": 0}
        sender = asyncio.create_task(_send_frames(ws, state))
        try:
            while True:
                try:
                    text = await asyncio.wait_for(ws.receive_text(), timeout=idle_timeout)
                except asyncio.TimeoutError:
                    await ws.send_json({"type": "error", "message": "closed after "
                                        f"{idle_timeout:g} s without activity: reload the page"})
                    await ws.close(code=1000)
                    return
                await _handle(ws, state, text, sessions)
        except WebSocketDisconnect:
            pass
        finally:
            sender.cancel()
            session = state["session"]
            if session is not None:
                sessions.pop(session.id, None)
                await asyncio.to_thread(session.stop)

    app = Starlette(routes=[
        Route("/", index),
        Route("/player/{sid}/{layer}/{neuron}", player),
        Route("/export/{sid}/config", export_config),
        Route("/export/{sid}/checkpoint", export_checkpoint),
        Route("/export/{sid}/data", export_data),
        WebSocketRoute("/ws", socket),
    ])
    app.state.sessions = sessions
    return app


async def _handle(ws, state, text, sessions):
    """One message from the page."""
    try:
        if len(text) > MAX_MESSAGE:
            raise ConfigError("message too large")
        try:
            message = json.loads(text)
        except ValueError:
            raise ConfigError("messages must be JSON") from None
        if not isinstance(message, dict):
            raise ConfigError("messages must be JSON objects")
        kind = message.get("type")
        session = state["session"]
        if kind == "config":
            config = PlaygroundConfig.parse(message.get("config"))
            for flag in ("play", "reset"):
                if message.get(flag) is not None and not isinstance(message[flag], bool):
                    raise ConfigError(f"{flag} must be true or false")
            if (session is not None and not message.get("reset")
                    and await asyncio.to_thread(session.change_live, config)):
                await ws.send_json({"type": "changed", **session.export_info()})
            else:
                await _start(ws, state, config, sessions, play=bool(message.get("play")))
        elif kind == "upload":
            if message.get("problem", "classification") not in ("classification", "regression"):
                raise ConfigError("problem: classification or regression")
            X, y = parse_csv(message.get("text"), message.get("problem") == "regression")
            state["upload"] = (X, y)
            await ws.send_json({"type": "uploaded", "rows": len(y),
                                "classes": 1 if y.dtype.kind == "f" else int(y.max()) + 1})
        elif session is None:
            raise ConfigError("send the settings first")
        elif kind in ("play", "pause"):
            await asyncio.to_thread(getattr(session, kind))
        elif kind == "step":
            await asyncio.to_thread(session.step, 1)
        elif kind == "edit":
            await asyncio.to_thread(session.edit_weight, _int(message.get("layer")),
                                    _int(message.get("row")), _int(message.get("col")),
                                    _float(message.get("value")))
            await ws.send_json({"type": "changed", **session.export_info()})
        elif kind == "speed":
            state["speed"] = _float(message.get("epochs_per_second"))
            if not 0 <= state["speed"] <= 1000:
                raise ConfigError("epochs_per_second: from 0 (no limit) to 1000")
            session.epochs_per_second = state["speed"]
        elif kind == "ping":
            pass
        else:
            raise ConfigError(f"unknown message type {str(kind)[:30]!r}")
    except ChainruleError as e:
        await ws.send_json({"type": "error", "message": str(e)})


async def _start(ws, state, config, sessions, play):
    """A new session for ``config`` (the old one, if any, is stopped and let go)."""
    old = state["session"]
    if old is not None:
        sessions.pop(old.id, None)
        state["session"] = None
        await asyncio.to_thread(old.stop)
    if len(sessions) >= MAX_SESSIONS:
        raise ConfigError(f"{MAX_SESSIONS} sessions are open already: close a playground "
                          "page and try again")
    upload = state["upload"] if config.dataset == "upload" else None
    session = await asyncio.to_thread(Session, config, upload)
    session.epochs_per_second = state.get("speed", session.epochs_per_second)
    sessions[session.id] = session
    state["session"], state["sent"] = session, 0
    await ws.send_json(session.describe())
    if play:
        await asyncio.to_thread(session.play)


async def _send_frames(ws, state):
    """Send the newest frame whenever there is one the page has not seen."""
    while True:
        await asyncio.sleep(SEND_INTERVAL)
        session = state["session"]
        if session is None:
            continue
        latest = session.latest(state["sent"])
        if latest is not None and session is state["session"]:
            state["sent"] = latest[0]
            await ws.send_json(latest[1])


def _int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"expected a whole number, got {str(value)[:20]!r}")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"expected a whole number, got {str(value)[:20]!r}") from None


def _float(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"expected a number, got {str(value)[:20]!r}")
    return float(value)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
