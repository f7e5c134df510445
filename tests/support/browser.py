"""A real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, which ``make
test`` installs when missing) driven by Selenium, behind an async facade.

Selenium's calls block; every one runs in a worker thread so the test's event loop
(and any server it runs in process: SMTP, a Graph API stand-in) keeps serving while
the browser waits.  Waits are conditions with deadlines, never sleeps.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
DEADLINE_S = 20.0
T = TypeVar("T")


def installed() -> bool:
    return Path(CHROMIUM).exists() and shutil.which(CHROMEDRIVER) is not None


class Page:
    """One browser tab. Selectors are CSS; ``text`` finds by visible text."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.driver = driver
        self.base = base.rstrip("/")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    async def goto(self, path: str) -> None:
        await self._run(self.driver.get, self.base + path)

    def _until(self, probe: Callable[[], T | None], what: str, timeout_s: float) -> T:
        def attempt(_driver: Any) -> T | None:
            try:
                return probe()
            except (NoSuchElementException, StaleElementReferenceException):
                return None

        try:
            found = WebDriverWait(self.driver, timeout_s, poll_frequency=0.1).until(attempt)
        except TimeoutException:
            raise AssertionError(
                f"timed out after {timeout_s}s waiting for {what} on {self.driver.current_url}"
            ) from None
        assert found is not None  # until() returns the first truthy result
        return found

    async def find(self, css: str, *, timeout_s: float = DEADLINE_S) -> WebElement:
        def probe() -> WebElement | None:
            el = self.driver.find_element(By.CSS_SELECTOR, css)
            return el if el.is_displayed() else None

        return await self._run(self._until, probe, f"{css!r}", timeout_s)

    async def find_all(self, css: str) -> list[WebElement]:
        return await self._run(self.driver.find_elements, By.CSS_SELECTOR, css)

    async def wait_text(self, css: str, text: str, *, timeout_s: float = DEADLINE_S) -> WebElement:
        """The first element matching ``css`` whose text contains ``text``."""

        def probe() -> WebElement | None:
            for el in self.driver.find_elements(By.CSS_SELECTOR, css):
                if text in el.text:
                    return el
            return None

        return await self._run(self._until, probe, f"{css!r} containing {text!r}", timeout_s)

    async def wait(
        self, probe: Callable[[], T | None], what: str, timeout_s: float = DEADLINE_S
    ) -> T:
        return await self._run(self._until, probe, what, timeout_s)

    async def fill(self, css: str, text: str) -> None:
        el = await self.find(css)

        def write() -> None:
            el.clear()
            el.send_keys(text)

        await self._run(write)

    async def select(self, css: str, value: str) -> None:
        el = await self.find(css)
        await self._run(lambda: Select(el).select_by_value(value))

    async def click(self, css: str) -> None:
        el = await self.find(css)
        await self._run(el.click)

    async def click_text(self, css: str, text: str) -> None:
        el = await self.wait_text(css, text)
        await self._run(el.click)

    async def js(self, script: str, *args: Any) -> Any:
        return await self._run(self.driver.execute_script, script, *args)

    async def accept_dialog(self, button_text: str) -> None:
        """Click a button of the open <dialog> (the console's confirmations)."""
        await self.click_text("dialog[open] button", button_text)

    async def screenshot(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        await self._run(self.driver.save_screenshot, str(path))

    async def resize(self, width: int, height: int) -> None:
        await self._run(self.driver.set_window_size, width, height)

    async def console_errors(self) -> list[str]:
        """JavaScript errors the page logged (severe entries of the browser log)."""
        logs = await self._run(self.driver.get_log, "browser")
        return [entry["message"] for entry in logs if entry.get("level") == "SEVERE"]


@asynccontextmanager
async def chromium(base: str, *, width: int = 1280, height: int = 900) -> AsyncIterator[Page]:
    """A headless Chromium on ``base``; quit however the test ends."""
    if not installed():
        raise AssertionError(
            f"{CHROMIUM} and {CHROMEDRIVER} are required (make test installs the Debian "
            "packages chromium and chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER)
    driver = await asyncio.to_thread(webdriver.Chrome, options=options, service=service)
    try:
        yield Page(driver, base)
    finally:
        await asyncio.to_thread(driver.quit)


async def log_in(page: Page, token: str) -> None:
    """Log the console in with the admin token and wait for the connectors page."""
    await page.goto("/")  # redirects to /console/
    await page.fill("#token", token)
    await page.click("form button[type=submit]")
    await page.find("#new-connector-name")
