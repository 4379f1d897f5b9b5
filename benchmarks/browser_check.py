"""Manual check of the interactive route: the notebooks in JupyterLab in headless Chromium.

    python benchmarks/browser_check.py OUT_DIR [--notebooks 01 02 ...] [--profile smoke]

For each notebook, in order: open it in JupyterLab, Run All, wait for the kernel to finish,
fail on any cell error, then find its explorer (the first `ipywidgets.interact` output),
screenshot it, move each of its controls in turn and check that the picture redraws:

- the frame slider is dragged and held: no redraw may happen while the mouse is down (a redraw
  may run a network, so sliders report on release), then released: a redraw must follow;
- every toggle-button group and drop-down is set to its second choice: a redraw must follow.

Screenshots go to OUT_DIR (<notebook>_{page,explorer_before,explorer_after}.png). The
notebooks run from a copy in a temporary folder, so JupyterLab's autosave never writes
outputs into the checkout; the kernel is the checkout's .venv (the package is installed
editable). Runs share one run folder ($HANDPOSE_RUN_DIR, default OUT_DIR/run, created by the
notebooks when missing), so 03 and 04 find what 02 and 03 trained when run in order.
Everything (JupyterLab, its kernels, Chromium) is stopped at the end, and after --timeout
seconds in all the check stops by itself.

Not part of the test suite: Selenium and Chromium are not dependencies of the package.
Install them beside it (Debian / Ubuntu):

    apt-get install -y chromium chromium-driver
    python3 -m venv /tmp/selvenv && /tmp/selvenv/bin/pip install selenium
    /tmp/selvenv/bin/python benchmarks/browser_check.py /tmp/browser-check --profile smoke

Exit status 0 when every notebook ran and its explorer redrew as described, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,1300",
)
# The first explorer's interact widget, the picture in it and its controls.
INTERACT = ".jp-OutputArea-output .widget-interact"
PROMPTS_JS = """
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
if (!panel) return null;
const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
    .map(p => p.textContent.trim());
const outputs = [...panel.querySelectorAll('.jp-OutputArea-output')]
    .map(o => o.textContent);
const kernel = [...document.querySelectorAll('.jp-StatusBar-TextItem')]
    .map(t => t.textContent).find(t => t.includes(' | ')) || '';
return {prompts: prompts, outputs: outputs,
        status: kernel.split(' | ').pop().trim().toLowerCase()};
"""


class CheckFailed(Exception):
    """A notebook did not run, or its explorer did not behave."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_lab(root: Path, venv: Path, port: int, token: str, env: dict) -> subprocess.Popen:
    """JupyterLab on loopback serving `root`, in its own process group (stopped by
    `stop_lab`); its log goes to root/jupyter.log."""
    log = (root / "jupyter.log").open("w")
    command = [
        str(venv / "bin" / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
        f"--LabApp.user_settings_dir={root / 'settings'}",
        f"--LabApp.workspaces_dir={root / 'workspaces'}",
    ]  # fmt: skip
    if os.geteuid() == 0:  # containers: JupyterLab refuses root without this
        command.append("--allow-root")
    return subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_for_lab(process: subprocess.Popen, port: int, token: str, deadline: float) -> None:
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CheckFailed(f"JupyterLab exited with status {process.returncode} (jupyter.log)")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise CheckFailed(f"JupyterLab did not answer at {url}")


def stop_lab(process: subprocess.Popen, port: int, token: str) -> None:
    """Ask the server to shut down (it stops its kernels), then end its process group."""
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/shutdown?token={token}", method="POST"
        )
        urllib.request.urlopen(request, timeout=10).close()
        process.wait(timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        pass
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def start_browser(profile_dir: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(options=options, service=service)


def wait_until(condition, deadline: float, what: str, poll_s: float = 1.0):
    """The first truthy value of `condition()`; CheckFailed naming `what` at the deadline."""
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise CheckFailed(f"timed out waiting for {what}")


def click_menu(driver: webdriver.Chrome, menu: str, command: str) -> None:
    """Open the top menu `menu` ("Run") and click its item labelled `command`."""
    for label in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel"):
        if label.text.strip() == menu:
            label.click()
            break
    else:
        raise CheckFailed(f"no menu {menu!r} in JupyterLab's menu bar")
    for item in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu-content .lm-Menu-itemLabel"):
        if item.text.strip() == command:
            item.click()
            return
    raise CheckFailed(f"no item {command!r} in the menu {menu!r}")


def run_all(driver: webdriver.Chrome, deadline: float) -> dict:
    """Run All and wait until every code cell has run: its prompt shows a number, none '*'.
    CheckFailed on a cell error (IPython's traceback rule in an output)."""
    wait_until(lambda: driver.execute_script(PROMPTS_JS), deadline, "the notebook to open")
    wait_until(
        lambda: (driver.execute_script(PROMPTS_JS) or {}).get("status") == "idle",
        deadline,
        "the kernel to start",
    )
    click_menu(driver, "Run", "Run All Cells")

    def finished():
        state = driver.execute_script(PROMPTS_JS)
        if any("-" * 40 in text and "Error" in text for text in state["outputs"]):
            return state
        ran = all(p[1:-2].strip().isdigit() for p in state["prompts"])
        return state if ran and state["status"] == "idle" else None

    state = wait_until(finished, deadline, "Run All to finish", poll_s=2.0)
    errors = [text for text in state["outputs"] if "-" * 40 in text and "Error" in text]
    if errors:
        raise CheckFailed(f"a cell failed:\n{errors[0][-2000:]}")
    return state


def picture(explorer: WebElement) -> str:
    """The src of the explorer's (last) image: a data URL that changes with each redraw."""
    images = explorer.find_elements(By.CSS_SELECTOR, "img")
    return images[-1].get_attribute("src") if images else ""


def wait_for_redraw(explorer: WebElement, before: str, deadline: float, what: str) -> str:
    return wait_until(
        lambda: (src := picture(explorer)) and src != before and src,
        deadline,
        f"the explorer to redraw after {what}",
    )


def drag_slider(driver: webdriver.Chrome, explorer: WebElement, before: str) -> None:
    """Drag the first slider's handle and hold it, then release: a redraw while the mouse is
    down fails the check (a redraw may run a network: sliders report on release)."""
    handle = explorer.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle")
    track = explorer.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-target")
    drag = ActionChains(driver).click_and_hold(handle)
    for _ in range(4):
        drag = drag.move_by_offset(track.size["width"] // 10, 0).pause(0.2)
    drag.perform()
    time.sleep(4.0)  # a continuously updating slider would have redrawn by now
    held = picture(explorer)
    ActionChains(driver).release().perform()
    if held != before:
        raise CheckFailed("the picture redrew while the slider was held (continuous_update)")


def exercise_controls(
    driver: webdriver.Chrome, explorer: WebElement, before: str, deadline: float
) -> tuple[str, list[str]]:
    """Move each control of the explorer in turn (the first slider, every toggle-button
    group, every drop-down); each move must redraw the picture. The last picture's src and
    what was moved."""
    moved = []
    if explorer.find_elements(By.CSS_SELECTOR, ".widget-slider .noUi-handle"):
        drag_slider(driver, explorer, before)
        before = wait_for_redraw(explorer, before, deadline, "the slider")
        moved.append("slider")
    for k, group in enumerate(explorer.find_elements(By.CSS_SELECTOR, ".widget-toggle-buttons")):
        group.find_elements(By.TAG_NAME, "button")[1].click()
        before = wait_for_redraw(explorer, before, deadline, f"toggle buttons {k}")
        moved.append(f"toggle {k}")
    for k, select in enumerate(explorer.find_elements(By.CSS_SELECTOR, ".widget-dropdown select")):
        select.find_elements(By.TAG_NAME, "option")[1].click()
        before = wait_for_redraw(explorer, before, deadline, f"drop-down {k}")
        moved.append(f"drop-down {k}")
    if not moved:
        raise CheckFailed("the explorer has no slider, toggle buttons or drop-down")
    return before, moved


def check_notebook(driver, base_url: str, name: str, out_dir: Path, deadline: float) -> str:
    """Run one notebook and exercise its explorer; a one-line summary."""
    driver.get(f"{base_url}/lab/tree/notebooks/{name}")
    started = time.monotonic()
    state = run_all(driver, deadline)
    seconds = time.monotonic() - started
    stem = Path(name).stem
    explorers = driver.find_elements(By.CSS_SELECTOR, INTERACT)
    if not explorers:
        driver.save_screenshot(str(out_dir / f"{stem}_page.png"))
        raise CheckFailed("no explorer (ipywidgets interact) in the outputs")
    explorer = explorers[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", explorer)
    before = wait_until(lambda: picture(explorer), deadline, "the explorer's picture")
    driver.save_screenshot(str(out_dir / f"{stem}_page.png"))
    explorer.screenshot(str(out_dir / f"{stem}_explorer_before.png"))
    _after, moved = exercise_controls(driver, explorer, before, deadline)
    time.sleep(1.0)  # let the new picture finish layout before the screenshot
    explorer.screenshot(str(out_dir / f"{stem}_explorer_after.png"))
    return (
        f"{name}: {len(state['prompts'])} code cells ran in {seconds:.0f} s; explorer redrew "
        f"after each of {', '.join(moved)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path, help="screenshots and the JupyterLab log")
    parser.add_argument("--notebooks", nargs="+", default=["01", "02", "03", "04", "05"])
    parser.add_argument("--profile", default="smoke", help="$HANDPOSE_PROFILE of the kernels")
    parser.add_argument("--run-dir", type=Path, help="$HANDPOSE_RUN_DIR (default OUT/run)")
    parser.add_argument("--figures-dir", type=Path, help="$HANDPOSE_FIGURES_DIR (OUT/figures)")
    parser.add_argument("--venv", type=Path, default=REPO / ".venv")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds for everything")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.timeout
    out_dir = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [
        path.name
        for key in args.notebooks
        for path in sorted((REPO / "notebooks").glob(f"{key}*.ipynb"))
    ]
    root = Path(tempfile.mkdtemp(prefix="browser-check-"))
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    env = {
        **os.environ,
        "HANDPOSE_PROFILE": args.profile,
        "HANDPOSE_RUN_DIR": str((args.run_dir or out_dir / "run").resolve()),
        "HANDPOSE_FIGURES_DIR": str((args.figures_dir or out_dir / "figures").resolve()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    env.pop("HANDPOSE_HEADLESS", None)  # interactive use: the explorers make widgets
    # Fresh settings: no news fetched (a loopback-only check), no pop-up over the notebook.
    news = root / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    port, token = free_port(), secrets.token_hex(16)
    lab = start_lab(root, args.venv, port, token, env)
    driver = None
    failures = 0

    def on_alarm(signum, frame):
        raise TimeoutError(f"browser check ran past {args.timeout:.0f} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.timeout) + 60)  # backstop: a selenium call stuck past the deadline
    try:
        wait_for_lab(lab, port, token, min(deadline, time.monotonic() + 120))
        driver = start_browser(root / "chromium-profile")
        base_url = f"http://127.0.0.1:{port}"
        driver.get(f"{base_url}/lab?token={token}")  # logs in (cookie) for the later pages
        for name in names:
            try:
                print(check_notebook(driver, base_url, name, out_dir, deadline), flush=True)
            except (CheckFailed, WebDriverException) as error:
                failures += 1
                driver.save_screenshot(str(out_dir / f"{Path(name).stem}_failed.png"))
                print(f"{name}: FAILED: {error}", flush=True)
        severe = driver.get_log("browser")
        if severe:
            print("browser console errors:", json.dumps(severe, indent=1)[:3000])
    except (CheckFailed, TimeoutError, WebDriverException) as error:
        failures += 1
        print(f"FAILED: {error}", flush=True)
    finally:
        signal.alarm(0)
        if driver is not None:
            driver.quit()
        stop_lab(lab, port, token)
        shutil.copy(root / "jupyter.log", out_dir / "jupyter.log")
        shutil.rmtree(root, ignore_errors=True)
    print(f"screenshots in {out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
