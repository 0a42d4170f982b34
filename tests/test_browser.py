"""End to end in a real browser: JupyterLab serves the ablation notebook, headless Chromium runs it, a
slider moves, and the figure redraws. Skipped with the reason when Chromium or Playwright is missing
(`.ci/run` installs both: Debian's `chromium`, PyPI's `playwright` without its browser download)."""
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "03_noisy_proxy_ablation.ipynb"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    import papermill

    work = tmp_path / "lab"
    work.mkdir()
    # the parameters a person would set, injected as papermill does, without executing anything yet
    papermill.execute_notebook(str(NOTEBOOK), str(work / "ablation.ipynb"), prepare_only=True, kernel_name="python3",
                               parameters={"profile": "smoke", "interactive": True, "out_dir": str(tmp_path / "out"),
                                           "runs_dir": str(tmp_path / "runs")})
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.open_browser=False"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("JupyterLab exited: " + server.stdout.read().decode()[-2000:])
                time.sleep(0.5)
        yield f"{url}/lab/tree/ablation.ipynb?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def test_slider_redraws_the_noisy_proxy_in_jupyterlab(lab):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(lab)
        expect(page.get_by_role("button", name=re.compile(r"\| Idle"))).to_be_visible(timeout=60_000)
        news = page.get_by_role("button", name="No", exact=True)  # JupyterLab's "get notified about news?"
        if news.count():
            news.click()
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        handle = page.locator(".widget-slider .noUi-handle").first
        expect(handle).to_be_visible(timeout=180_000)
        # the interact() output: its sliders, the line the callback prints, and the figure it draws
        widget = page.locator(".jp-OutputArea-output", has=page.locator(".widget-slider")).last
        expect(widget).to_contain_text("proxy σ=0.25 keep=1, model trained", timeout=60_000)
        figure = widget.locator("img").last
        expect(figure).to_be_visible(timeout=30_000)
        before = figure.get_attribute("src")
        handle.focus()
        for _ in range(3):  # σ 0.25 → 0.4 in steps of 0.05
            page.keyboard.press("ArrowRight")
        expect(widget).to_contain_text("proxy σ=0.4 keep=1", timeout=60_000)
        expect(widget.locator("img").last).not_to_have_attribute("src", before, timeout=30_000)
        browser.close()
