"""The page at / in a real browser (headless Chromium through Selenium): type inputs, get the
n-best outputs and the attention heatmap, hover and choose, see errors in words, at desktop and
phone width. Skipped where Chromium and its driver are not installed (`.ci/run` installs them).

SEQ2SEQKIT_SCREENSHOTS=DIR keeps the screenshots (of a tiny model; docs/images/serve_page.png shows a
trained G2P model in the same browser).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("Chromium or chromedriver is not installed", allow_module_level=True)

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_window_size(1000, 1000)
    yield driver
    driver.quit()


def screenshot(driver: Any, path: Path, width: int) -> None:
    """The whole page at ``width`` pixels into ``path`` (and SEQ2SEQKIT_SCREENSHOTS when set)."""
    driver.set_window_size(width, 800)
    chrome = driver.execute_script("return window.outerHeight - window.innerHeight")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, height + chrome + 10)
    driver.save_screenshot(str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"
    keep = os.environ.get("SEQ2SEQKIT_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)


def wait(driver: Any, condition: Callable[[Any], object], seconds: float = 20) -> Any:
    return WebDriverWait(driver, seconds).until(condition)


def test_the_page_shows_outputs_and_attention(
    browser: Any, start_server: Callable[..., Any], reverse_model: Path, tmp_path: Path
) -> None:
    server = start_server(reverse_model)
    browser.get(server.url + "/")
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    assert "reverse" in browser.find_element(By.ID, "summary").text
    browser.find_element(By.ID, "input-input").send_keys("abcdef\nxyz")
    browser.find_element(By.ID, "nbest").clear()
    browser.find_element(By.ID, "nbest").send_keys("2")
    browser.find_element(By.ID, "generate").click()
    cards = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".result"))
    assert len(cards) == 2
    first = cards[0]
    hypotheses = first.find_elements(By.CSS_SELECTOR, ".hypothesis")
    assert len(hypotheses) == 2 and "chosen" in hypotheses[0].get_attribute("class")
    rows = first.find_elements(By.CSS_SELECTOR, ".heatmap tbody tr")
    columns = first.find_elements(By.CSS_SELECTOR, ".heatmap th.col")
    assert [c.text for c in columns] == list("abcdef")
    best_tokens = len(hypotheses[0].find_element(By.CLASS_NAME, "text").text)
    assert len(rows) == best_tokens + 1  # each output character and </s>
    assert rows[-1].find_element(By.TAG_NAME, "th").text == "</s>"
    cell = rows[0].find_elements(By.TAG_NAME, "td")[-1]
    ActionChains(browser).move_to_element(cell).perform()
    readout = first.find_element(By.CLASS_NAME, "readout").text
    assert "← “f”" in readout and f"weight {cell.get_attribute('data-weight')}" in readout
    screenshot(browser, tmp_path / "serve_page.png", 1000)

    hypotheses[1].click()  # the second output's own attention
    assert "chosen" in hypotheses[1].get_attribute("class")
    rows = first.find_elements(By.CSS_SELECTOR, ".heatmap tbody tr")
    assert len(rows) == len(hypotheses[1].find_element(By.CLASS_NAME, "text").text) + 1

    screenshot(browser, tmp_path / "serve_page_phone.png", 390)
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0  # nothing sticks out sideways at phone width (wide heatmaps scroll inside)


def test_the_page_shows_errors_in_words(
    browser: Any, start_server: Callable[..., Any], reverse_model: Path
) -> None:
    server = start_server(reverse_model, "--max-beam", "8")
    browser.set_window_size(1000, 900)
    browser.get(server.url + "/")
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    browser.find_element(By.ID, "generate").click()
    error = browser.find_element(By.ID, "error")
    assert error.is_displayed() and error.text == "Type an input first."
    browser.find_element(By.ID, "input-input").send_keys("abc")
    browser.find_element(By.ID, "beam").clear()
    browser.find_element(By.ID, "beam").send_keys("50")
    browser.find_element(By.ID, "generate").click()
    wait(browser, lambda d: "limit" in d.find_element(By.ID, "error").text)
    assert browser.find_element(By.ID, "error").text == "beam 50 is over this server's limit of 8"
    server.stop()
    browser.find_element(By.ID, "beam").clear()
    browser.find_element(By.ID, "beam").send_keys("2")
    browser.find_element(By.ID, "generate").click()
    wait(browser, lambda d: "Cannot reach the server" in d.find_element(By.ID, "error").text)


def test_the_page_transcribes_audio_files(
    browser: Any, start_server: Callable[..., Any], speech_model: Path, tmp_path: Path
) -> None:
    """A speech model's page takes audio files (POST /v1/transcribe, one per file) and shows
    each file's n-best transcripts, as the API gives them."""
    import httpx

    server = start_server(speech_model)
    browser.set_window_size(1000, 900)
    browser.get(server.url + "/")
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    browser.find_element(By.ID, "generate").click()
    assert browser.find_element(By.ID, "error").text == "Choose an audio file first."
    files = [speech_model.parent / "wav" / f"{i}.wav" for i in (0, 4)]
    browser.find_element(By.ID, "input-audio").send_keys("\n".join(str(f) for f in files))
    browser.find_element(By.ID, "nbest").clear()
    browser.find_element(By.ID, "nbest").send_keys("2")
    browser.find_element(By.ID, "generate").click()
    cards = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".result"))
    assert [card.find_element(By.CLASS_NAME, "source").text for card in cards] == ["0.wav", "4.wav"]
    for card, path in zip(cards, files, strict=True):
        answer = httpx.post(f"{server.url}/v1/transcribe?nbest=2", content=path.read_bytes(), timeout=30)
        expected = [h["text"] or "(empty)" for h in answer.json()["hypotheses"]]
        assert [t.text for t in card.find_elements(By.CSS_SELECTOR, ".hypothesis .text")] == expected
    screenshot(browser, tmp_path / "serve_page_speech.png", 1000)
