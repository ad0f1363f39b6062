"""The triage page in headless Chromium against the real service: a trainer works the queue
with the keyboard, meets a 409 from a second trainer without losing what she typed, and
looks at the agreement report. Screenshots go to bench/results/e2e/.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RESULTS, Service

pytestmark = [pytest.mark.models, pytest.mark.slow, pytest.mark.e2e]

RESPONSES = [
    "Tuples are mutable. The for statement iterates over the items of a sequence.",
    "Python lists are immutable. <img src=x onerror=alert(1)> is not a claim.",
    "The break statement exits the outermost loop. A dictionary maps keys to values.",
]


def wait(driver: Any, what: str, condition: Any, limit: float = 30.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, limit).until(lambda d: condition(d), message=what)


def keys(driver: Any, *pressed: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(*pressed).perform()


def shown(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def current_claim(driver: Any) -> str:
    return str(driver.execute_script("return state.items[state.index].claim.id"))


def message(driver: Any) -> str:
    box = shown(driver, "message")
    return str(box.text) if box.is_displayed() else ""


def test_a_trainer_works_the_queue_by_keyboard(service: Service, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    RESULTS.mkdir(parents=True, exist_ok=True)
    for text in RESPONSES:
        made = httpx.post(
            f"{service.url}/v1/checks",
            json={"text": text, "metadata": {"source": "ui-test"}},
            headers=service.headers("pipeline"),
            timeout=120,
        )
        assert made.status_code == 201, made.text
    driver = browser
    driver.get(f"{service.url}/ui")
    assert "default-src 'none'" in httpx.get(f"{service.url}/ui").headers["content-security-policy"]
    shown(driver, "key").send_keys(service.keys["ana"], Keys.ENTER)
    wait(driver, "the first claim", lambda d: shown(d, "claim").is_displayed())
    loaded_at = time.monotonic()
    count = len(driver.find_elements(By.CSS_SELECTOR, "#queue-list li"))
    assert count >= 4, count

    # Evidence and response are text: the markup in a response stays text.
    driver.execute_script("go(state.items.findIndex(i => i.check_text.includes('<img')))")
    assert "<img src=x" in shown(driver, "response").text
    assert not driver.find_elements(By.CSS_SELECTOR, "#response img")
    marks = driver.find_elements(By.CSS_SELECTOR, "#response mark.claim")
    assert marks and marks[0].text in shown(driver, "response").text
    assert driver.find_elements(By.CSS_SELECTOR, "#evidence mark.sentence")
    driver.save_screenshot(str(RESULTS / "ui-claim.png"))
    driver.execute_script("go(0)")
    driver.save_screenshot(str(RESULTS / "ui-queue.png"))

    # Y confirms the verdict.
    first = current_claim(driver)
    shown(driver, "claim-text").click()  # away from the sign-in field
    keys(driver, "y")
    wait(driver, "the confirm saved", lambda d: message(d).startswith("Saved"))
    assert current_claim(driver) != first

    # R, C, typing, Esc, Enter: a correction with its corrected text.
    second = current_claim(driver)
    keys(driver, "r", "c", "Lists are mutable.", Keys.ESCAPE, Keys.ENTER)
    wait(driver, "the correction saved", lambda d: "correct" in message(d))
    history = httpx.get(
        f"{service.url}/v1/claims/{second}/reviews", headers=service.headers("ana"), timeout=10
    ).json()
    assert (history[-1]["action"], history[-1]["label"]) == ("correct", "REFUTED")
    assert history[-1]["corrected_text"] == "Lists are mutable."

    # A second trainer takes the next claim once ana's lease has run out (8 s).
    third = current_claim(driver)
    time.sleep(max(0.0, 9 - (time.monotonic() - loaded_at)))
    bea = httpx.Client(base_url=service.url, headers=service.headers("bea"), timeout=30)
    try:
        taken = bea.get("/v1/review-queue", params={"limit": 100}).json()["items"]
        assert third in [i["claim"]["id"] for i in taken]
        keys(driver, "n", "c", "Not in the reference.", Keys.ESCAPE, Keys.ENTER)
        wait(driver, "the 409", lambda d: "Not saved" in message(d))
        assert "conflict" in shown(driver, "message").get_attribute("class")
        assert shown(driver, "corrected").get_attribute("value") == "Not in the reference."
        driver.save_screenshot(str(RESULTS / "ui-conflict.png"))

        # bea confirms it; ana reloads (her text stays) and saves on the new version.
        claim = bea.get(f"/v1/claims/{third}").json()
        done = bea.post(
            f"/v1/claims/{third}/reviews",
            json={"action": "confirm", "expected_version": claim["version"]},
        )
        assert done.status_code == 201, done.text
    finally:
        bea.close()
    shown(driver, "reload").click()
    wait(driver, "the reload", lambda d: message(d).startswith("Reloaded"))
    assert shown(driver, "corrected").get_attribute("value") == "Not in the reference."
    shown(driver, "claim-text").click()
    keys(driver, Keys.ENTER)
    wait(driver, "the correction saved", lambda d: message(d).startswith("Saved"))
    history = httpx.get(
        f"{service.url}/v1/claims/{third}/reviews", headers=service.headers("ana"), timeout=10
    ).json()
    assert [(h["reviewer"], h["action"]) for h in history] == [
        ("bea", "confirm"),
        ("ana", "correct"),
    ]
    assert history[-1]["corrected_text"] == "Not in the reference."

    shown(driver, "tab-agreement").click()
    wait(driver, "the matrix", lambda d: d.find_elements(By.CSS_SELECTOR, "#matrix svg rect"))
    cells = driver.find_elements(By.CSS_SELECTOR, "#matrix svg text.count")
    assert len(cells) == 9 and sum(int(c.text) for c in cells) >= 3
    driver.save_screenshot(str(RESULTS / "ui-agreement.png"))
