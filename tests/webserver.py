"""Helpers for the web page and metrics tests: the real app on a loopback port, a real headless
Chromium (Debian's `chromium` + `chromium-driver`, which `make test` installs when missing), and
the folder where screenshots are kept (test-artifacts/, git-ignored)."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time

import pytest

ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--window-size=1280,900", "--lang=en-US"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(dsn: str, **app_options):
    """pipeline.serve's app under uvicorn in a thread; yields its base URL. `app_options` go to
    create_app (inbox_dir=, max_upload_bytes=, ...)."""
    import uvicorn

    from pipeline.serve import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(dsn, **app_options), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def chromium_paths() -> tuple[str, str]:
    """(browser, driver), or a skip (a failure under CI, where `make test` must have installed them)."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        message = ("Chromium and chromedriver are needed: `make browser` (apt-get install chromium "
                   "chromium-driver) installs them")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return browser, driver


@contextlib.contextmanager
def chromium():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager would otherwise try to download one (no internet).
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()


def screenshot(driver, name: str) -> str:
    """Save a full-page PNG of the current view under test-artifacts/; returns its path."""
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(900, min(height + 120, 4000)))
    assert driver.save_screenshot(path), path
    return path
