"""The HTML report in a real browser: headless Chromium, driven by Selenium through Debian's
chromedriver, opens the toy run's ``results/report.html`` (a React page), walks every category
by clicking its menu entries, shows every figure and table of every subcategory, and finds no
broken image and no console error; the front page states the headline numbers. Screenshots of
the front page and of the "Statistical inference" category are saved next to the report, under
``results/report/``.

The browser comes from workflow/install_system_packages.sh (Debian ``chromium`` and
``chromium-driver``), which the test command runs: where it is missing the test fails, and says
how to install it, rather than skip. Selenium rather than Playwright: Selenium drives Debian's
Chromium through the chromedriver built with it and downloads nothing, whereas each Playwright
release is built against its own browser build (which cannot be downloaded here) and only
loosely supports another one.
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.workflow

WINDOW = (1600, 1000)
WAIT_S = 20
POLL_S = 0.02
INFERENCE = "Statistical inference"
BROKEN = "broken image: "

# React has drawn the page and nothing is animating (a click during a slide lands beside its
# target; with NO_TRANSITIONS this holds at once)
READY = """
return typeof app !== 'undefined' && document.querySelector('nav ul, nav table') !== null
    && document.getAnimations().every((a) => a.playState !== 'running');
"""
# the report's CSS transitions off (the navbar slides wider between its modes, a clicked row
# fades in its highlight): the page is drawn as before, only at once
NO_TRANSITIONS = """
const style = document.createElement('style');
style.textContent = '*, *::before, *::after { transition: none !important; }';
document.head.appendChild(style);
"""
# the menu entry (<a> in the navbar) labelled arguments[0]
MENU_ENTRY = """
return [...document.querySelectorAll('nav a')].find(
    (a) => a.textContent.trim() === arguments[0]) || null;
"""
# images not loaded, or loaded 0 px wide (a broken data URI)
BROKEN_IMAGES = """
return [...document.images].filter((img) => !img.complete || img.naturalWidth === 0)
    .map((img) => img.src.slice(0, 80));
"""
# the subcategory's result list in the navbar, one [view button, result path of a table's
# download link (null for a figure), label] per row
ROWS = """
return [...document.querySelectorAll('nav table tbody tr')].map((row) => {
    const button = row.querySelector('td:last-child a');
    const table = button !== null && button.hasAttribute('download')
        ? Object.keys(results).find((p) => results[p].data_uri === button.href) || '?'
        : null;
    return [button, table, row.textContent.trim()];
});
"""
# the result on display in the content pane: its path once its figure has loaded, prefixed
# with arguments[0] where it did not decode
SHOWN_RESULT = """
const path = app.state.resultPath;
if (!path || !(path in results) || app.state.content !== 'img') return null;
const img = document.querySelector('#app div.grow img');
if (!img || img.src !== results[path].data_uri || !img.complete) return null;
return img.naturalWidth > 0 ? path : arguments[0] + path;
"""
STATE = "const {contentPath, contentText, ...s} = app.state; return JSON.stringify(s)"


def _chromium() -> tuple[str, str]:
    """Paths of the Chromium browser and its chromedriver, or a failure saying how to get them."""
    browser = next(
        (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
    )
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = [
            name
            for name, path in (("chromium", browser), ("chromium-driver", driver))
            if path is None
        ]
        pytest.fail(
            f"the report's browser test needs headless Chromium; missing: {', '.join(missing)}. "
            "Install it with `bash workflow/install_system_packages.sh` as root (the test "
            f"command does), or `sudo apt-get install {' '.join(missing)}`",
            pytrace=False,
        )
    return browser, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium with its console log kept (level SEVERE = console errors)."""
    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in containers
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: webdriver.Chrome, script: str, what: str, *args: Any) -> Any:
    """Poll ``script`` until it returns a true value (that value), or fail naming ``what``."""
    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=POLL_S).until(
            lambda d: d.execute_script(script, *args)
        )
    except TimeoutException:
        state = driver.execute_script(STATE)
        pytest.fail(f"{what}: not shown within {WAIT_S} s (report state {state})")


def _open(driver: webdriver.Chrome, report: Path) -> None:
    """Load the report afresh and wait until React has drawn it."""
    driver.get(report.resolve().as_uri())
    _wait(driver, READY, "the report's menu")
    driver.execute_script(NO_TRANSITIONS)
    driver.get_log("browser")  # the console log starts here (and holds the load's messages)


def _console_errors(driver: webdriver.Chrome) -> list[str]:
    """The console errors (level SEVERE) logged since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _click(driver: webdriver.Chrome, element: WebElement) -> None:
    """Click ``element`` as a user would, once in the middle of its pane (clear of the navbar's
    sticky heading) and with nothing sliding, then wait for the page to settle."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()
    _wait(driver, READY, "the page after a click")


def _click_menu(driver: webdriver.Chrome, label: str) -> None:
    """Click the navbar entry labelled ``label``."""
    entry = driver.execute_script(MENU_ENTRY, label)
    assert isinstance(entry, WebElement), f"no menu entry {label!r} in the report's navbar"
    _click(driver, entry)


def _go_home(driver: webdriver.Chrome) -> None:
    """Back to the main menu through the breadcrumbs' home button."""
    _click(driver, driver.find_element("css selector", "nav ol a"))
    _wait(driver, "return app.state.navbarMode === 'menu'", "the main menu")


def _show_subcategory(driver: webdriver.Chrome, category: str, subcategory: str) -> list[str]:
    """Open ``category`` / ``subcategory`` from the main menu or from the category's list of
    subcategories; the result paths it lists."""
    if driver.execute_script("return app.state.navbarMode") == "menu":
        _click_menu(driver, category)
    if not driver.execute_script("return isSingleSubcategory(arguments[0])", category):
        _click_menu(driver, subcategory)
    _wait(
        driver,
        "return app.state.navbarMode === 'subcategory' && app.state.subcategory === arguments[0]"
        " && document.querySelector('nav table tbody tr') !== null",
        f"{category} / {subcategory}",
        subcategory,
    )
    return driver.execute_script(
        "return categories[arguments[0]][arguments[1]]", category, subcategory
    )


def _csv_rows(uri: str) -> list[str]:
    """The non-empty lines of a CSV data URI."""
    head, _, data = uri.partition(",")
    raw = base64.b64decode(data) if head.endswith(";base64") else unquote_to_bytes(data)
    return [line for line in raw.decode("utf-8").splitlines() if line.strip()]


def _save_screenshot(driver: webdriver.Chrome, path: Path) -> None:
    """Save the window as a PNG at ``path`` and check it has real content: the window's size,
    not one flat colour."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    assert path.stat().st_size > 20_000, (path, path.stat().st_size)
    with Image.open(path) as image:
        assert image.size[0] >= WINDOW[0] // 2 and image.size[1] >= WINDOW[1] // 2, image.size
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 50, f"{path}: only {len(colours)} colours"


def test_front_page_states_the_headline_numbers(browser, toy_run, toy_report):
    _open(browser, toy_report)
    text = browser.find_element("tag name", "body").text
    assert "Headline numbers of this run" in text
    headline = json.loads((toy_run / "results/summary.json").read_text())["headline"]
    assert f"{headline['discriminant']} (headline)" in text
    # the rule graph (Vega) next to the description has been drawn
    _wait(browser, "return document.querySelector('#app svg.marks, #app canvas')", "rule graph")
    assert browser.execute_script(BROKEN_IMAGES) == []
    _save_screenshot(browser, toy_report.parent / "report/front_page.png")
    assert _console_errors(browser) == []


def test_every_figure_and_table_of_every_category_renders(browser, toy_report):
    _open(browser, toy_report)
    categories = browser.execute_script("return categories")
    mime = browser.execute_script(
        "return Object.fromEntries(Object.entries(results).map(([p, r]) => [p, r.mime_type]))"
    )
    assert set(categories) >= {"Samples and control plots", "Supervised", INFERENCE}
    seen: set[str] = set()
    for category in sorted(categories):
        for subcategory in sorted(categories[category]):
            where = f"{category} / {subcategory}"
            listed = _show_subcategory(browser, category, subcategory)
            shown: set[str] = set()
            for button, table, label in browser.execute_script(ROWS):
                assert button is not None, f"{where}: {label} has no view button"
                if table is not None:
                    # a table: the report offers it as a download, its data URI holds the CSV
                    href = button.get_dom_attribute("href")
                    assert table in listed, f"{where}: {label} downloads {table}"
                    assert len(_csv_rows(href)) >= 2, f"{where}: {table} is an empty table"
                    shown.add(table)
                else:
                    # a figure: its view button shows it in the content pane
                    button.click()
                    path = _wait(browser, SHOWN_RESULT, f"{where}: {label}", BROKEN)
                    assert not path.startswith(BROKEN), f"{where}: {path}"
                    shown.add(path)
            assert shown == set(listed), f"{where}: shown {sorted(shown)}, listed {sorted(listed)}"
            broken = browser.execute_script(BROKEN_IMAGES)
            assert broken == [], f"{where}: broken images {broken}"
            errors = _console_errors(browser)
            assert errors == [], f"{where}: console errors {errors}"
            seen |= shown
            if len(categories[category]) > 1:
                _click_menu(browser, category)  # the breadcrumb back to the subcategories
        _go_home(browser)
    # every result of the report was reached, figures and tables alike
    assert seen == set(mime)
    assert {m for m in mime.values() if not m.startswith("image/")} == {"text/csv"}
    # and the report's own pages draw without error too
    for page in ("Statistics", "Workflow", "About"):
        _click_menu(browser, page)
    assert browser.execute_script(BROKEN_IMAGES) == []
    assert _console_errors(browser) == []


def test_statistical_inference_category_screenshot(browser, toy_run, toy_report):
    """The headline discriminant's results, its post-fit figure on display."""
    _open(browser, toy_report)
    headline = json.loads((toy_run / "results/summary.json").read_text())["headline"]
    listed = _show_subcategory(browser, INFERENCE, headline["discriminant"])
    postfit = [button for button, _, label in browser.execute_script(ROWS) if "postfit" in label]
    assert postfit, f"no post-fit figure among {listed}"
    _click(browser, postfit[0])
    assert "postfit" in _wait(browser, SHOWN_RESULT, f"{INFERENCE}: post-fit figure", BROKEN)
    _save_screenshot(browser, toy_report.parent / "report/statistical_inference.png")
    assert _console_errors(browser) == []
