"""Real programs for the end-to-end tests: the service, Label Studio 1.23.2, Chromium.

They are found, never downloaded: ``tests/e2e/install.sh`` (which ``.ci/run``
runs) puts Label Studio in a virtual environment of its own and installs
Debian's ``chromium`` and ``chromium-driver``. Where one is missing its tests
skip and say what to run; with ``CLAIMSIEVE_REQUIRE_E2E=1`` (CI) they fail.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.processes import ROOT, claimsieve, free_port, serve, stop, wait_ready

LABEL_STUDIO = (
    Path(
        os.environ.get(
            "CLAIMSIEVE_LABEL_STUDIO_VENV", Path.home() / ".cache/claimsieve/label-studio-1.23.2"
        )
    )
    / "bin"
    / "label-studio"
)
CHROMIUM = Path(os.environ.get("CLAIMSIEVE_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CLAIMSIEVE_CHROMEDRIVER", "/usr/bin/chromedriver"))
RESULTS = ROOT / "bench" / "results" / "e2e"


def missing(what: str) -> None:
    message = f"{what} is not installed: run tests/e2e/install.sh"
    if os.environ.get("CLAIMSIEVE_REQUIRE_E2E") == "1":
        pytest.fail(message)
    pytest.skip(message)


@dataclass(frozen=True)
class Service:
    """`claimsieve serve` with authentication on, the built-in corpus and a key per user."""

    url: str
    keys: dict[str, str]
    log: Path

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


# Who holds a key: Label Studio's backend calls, its webhook, and two trainers.
USERS = {
    "label-studio": "pipeline",
    "ls-webhook": "trainer",
    "ana": "trainer",
    "bea": "trainer",
    "pipeline": "pipeline",
}


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    data = tmp_path_factory.mktemp("e2e-service")
    keys = {
        name: claimsieve("keys", "create", "--role", role, "--name", name, data_dir=data)
        .stdout.strip()
        .splitlines()[-1]
        for name, role in USERS.items()
    }
    port, log = free_port(), data / "service.log"
    # A short review lease, so that a second trainer can take a claim during the test.
    process = serve(data, port, log, CLAIMSIEVE_REVIEW_LEASE_S="8")
    try:
        wait_ready(process, port, log, limit=900)
        yield Service(f"http://127.0.0.1:{port}", keys, log)
    finally:
        stop(process)


@dataclass(frozen=True)
class LabelStudio:
    url: str
    token: str
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    if not LABEL_STUDIO.is_file():
        missing(f"Label Studio 1.23.2 ({LABEL_STUDIO})")
    data = tmp_path_factory.mktemp("label-studio")
    port, log, token = free_port(), data / "label-studio.log", secrets.token_hex(20)
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data),
        "LABEL_STUDIO_USERNAME": "admin@example.com",
        "LABEL_STUDIO_PASSWORD": secrets.token_hex(12),
        "LABEL_STUDIO_USER_TOKEN": token,
        # Without these it refuses a backend and a webhook on 127.0.0.1, and calls out.
        "ML_BLOCK_LOCAL_IP": "false",
        "SSRF_PROTECTION_ENABLED": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
    }
    command = [str(LABEL_STUDIO), "start", "--no-browser", "--port", str(port)]
    command += ["--internal-host", "127.0.0.1", "--enable-legacy-api-token"]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        began = time.monotonic()
        while True:
            if process.poll() is not None:
                pytest.fail(f"Label Studio exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() - began > 300:
                pytest.fail(f"Label Studio not up after 300 s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield LabelStudio(url, token, log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        missing(f"Chromium and ChromeDriver ({CHROMIUM}, {CHROMEDRIVER})")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1100")
    driver = webdriver.Chrome(service=DriverService(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
