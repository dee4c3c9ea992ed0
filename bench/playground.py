"""The playground's speed: server time per training epoch and per frame, and the page's
redraws per second in headless Chromium, with the default network (circle, 2-4-2-2, tanh,
batch 10, Adam).

    python bench/playground.py            # about 30 s
    python bench/playground.py --seconds 3

The page must redraw at least 10 times a second while training. Server times are medians
over epochs of one session; the frame rate is what the page itself counts (frames drawn
per second of wall time) while it trains at each speed setting. Without Chromium or
Playwright, the frame rate is reported as n/a.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from chainrule.playground.config import PlaygroundConfig  # noqa: E402
from chainrule.playground.session import Session  # noqa: E402

CHROMIUM = os.environ.get("CHAINRULE_CHROMIUM", "/usr/bin/chromium")
TARGET_FPS = 10.0


def server_times(epochs: int = 150) -> tuple[float, float, float]:
    """(median ms per epoch, median ms per frame, epochs per second) of one session."""
    session = Session(PlaygroundConfig(epochs=epochs))
    session.epochs_per_second = 0  # as fast as possible
    frames = []
    original = session._frame

    def timed_frame():
        start = time.perf_counter()
        frame = original()
        frames.append(time.perf_counter() - start)
        return frame

    session._frame = timed_frame
    started = time.perf_counter()
    session.play()
    while not session.finished:
        time.sleep(0.01)
    wall = time.perf_counter() - started
    seconds = [r["seconds"] for r in session.trainer.history]
    per_epoch = [b - a for a, b in zip([0.0] + seconds, seconds)]
    session.stop()
    return 1e3 * statistics.median(per_epoch), 1e3 * statistics.median(frames), epochs / wall


def page_fps(seconds: float) -> dict:
    """Frames per second drawn by the page while training, per speed setting."""
    try:
        import uvicorn
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if not os.path.exists(CHROMIUM):
        return {}
    from chainrule.playground import create_app
    from chainrule.playground.app import MAX_MESSAGE

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="off",
                                           ws="websockets-sansio", ws_max_size=MAX_MESSAGE))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    results = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            for speed, label in (("20", "20 epochs/s (default)"), ("0", "as fast as possible")):
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url + "#epochs=100000")
                page.get_by_test_id("status").filter(has_text="paused").wait_for()
                page.get_by_test_id("speed").select_option(speed)
                page.get_by_test_id("play").click()
                page.wait_for_timeout(1500)  # warm up, then count the page's own redraws
                start_epoch = int(page.get_by_test_id("epoch").inner_text())
                start = time.perf_counter()
                readings = []
                while time.perf_counter() - start < seconds:
                    page.wait_for_timeout(1000)
                    text = page.get_by_test_id("fps").inner_text()
                    if text:
                        readings.append(float(text.split()[0]))
                epochs = int(page.get_by_test_id("epoch").inner_text()) - start_epoch
                results[label] = (statistics.median(readings),
                                  epochs / (time.perf_counter() - start))
                page.close()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per speed setting")
    args = parser.parse_args(argv)
    epoch_ms, frame_ms, eps = server_times()
    print("playground, default network (circle, 2-4-2-2 tanh, batch 10, Adam), 2-core machine")
    print(f"server: {epoch_ms:.2f} ms per epoch (30 steps), {frame_ms:.2f} ms to build a "
          f"frame, {eps:.0f} epochs/s with frames")
    fps = page_fps(args.seconds)
    if not fps:
        print("page: n/a (needs Chromium at /usr/bin/chromium and playwright)")
        return 0
    print(f"| speed setting | frames drawn per second | epochs per second | target >= "
          f"{TARGET_FPS:g} fps |")
    print("| --- | --- | --- | --- |")
    for label, (f, e) in fps.items():
        print(f"| {label} | {f:.1f} | {e:.0f} | {'met' if f >= TARGET_FPS else 'MISSED'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
