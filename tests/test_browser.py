"""The web app in a real browser: headless Chromium driven by Selenium against ``gunicorn app:app`` on loopback.

Needs Debian's ``chromium`` and ``chromium-driver`` (.ci/run installs them). Without them the test is skipped, unless
``SEGLIB_REQUIRE_BROWSER=1`` (set by CI), where it fails. ``SEGLIB_SCREENSHOT=path.png`` saves a screenshot of a
result page there; with ``SEGLIB_MODEL`` set to the model chapter 9 trained, the page shows that model on the run
profile's generated dataset (this is how ``book/images/webapp.png`` was made), else the tiny untrained test model on
the test dataset.
"""

import json
import os
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seglib import cityscapes, datasets, labels, webapp

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 60


def _unavailable(reason: str) -> None:
    if os.environ.get("SEGLIB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SEGLIB_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install -r requirements.txt)")
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        _unavailable(f"{' and '.join(missing)} missing (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--no-first-run", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                     "--window-size=1280,1000"):
        options.add_argument(argument)
    with pytest.MonkeyPatch.context() as patch:  # for this module's browser only, not the whole test run
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online (explicit paths)
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        driver.set_page_load_timeout(WAIT_SECONDS)
        try:
            yield driver
        finally:
            driver.quit()


@pytest.fixture(scope="module")
def site(tiny_model_path, small_dataset):
    """``(url, sample image paths by id)`` of a gunicorn serving the web app."""
    screenshot = bool(os.environ.get("SEGLIB_SCREENSHOT"))
    dataset = datasets.dataset_root() if screenshot else small_dataset
    model = os.environ.get("SEGLIB_MODEL") if screenshot else None
    env = {"SEGLIB_MODEL": str(model or tiny_model_path), "CITYSCAPES_DATASET": str(dataset),
           webapp.ENDPOINT_URL_ENV: ""}
    samples = {frame.stem: frame.image_path for frame in cityscapes.list_frames(dataset, "val")}
    with webapp.gunicorn_server("app:app", cwd=ROOT, env=env) as server:
        yield server.url, samples


def api_shares(url: str, data: bytes) -> dict[str, float]:
    request = urllib.request.Request(f"{url}/api/predict", data=data, method="POST",
                                     headers={"Content-Type": "application/octet-stream"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())["shares"]


def wait_for_result(driver) -> dict[str, tuple[float, str]]:
    """Wait until the result's three pictures have loaded; -> {category: (data-share, shown text)}."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    loaded = "return ['input-image', 'mask-image', 'overlay-image'].every(id => { const img = " \
             "document.getElementById(id); return img && img.complete && img.naturalWidth > 0; });"
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: d.execute_script(loaded))
    rows = driver.find_elements(By.CSS_SELECTOR, "#legend tbody tr")
    return {row.get_attribute("data-category"): (float(row.get_attribute("data-share")),
                                                 row.find_element(By.CLASS_NAME, "share").text) for row in rows}


def check_legend(legend: dict[str, tuple[float, str]], shares: dict[str, float]) -> None:
    assert list(legend) == list(labels.CATEGORY_NAMES)
    assert {name: share for name, (share, _) in legend.items()} == shares
    assert {name: text for name, (_, text) in legend.items()} == {
        name: f"{100 * share:.2f} %" for name, share in shares.items()}


def pick_sample(driver, url: str, sample_id: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, "sample")).select_by_value(sample_id)
    driver.find_element(By.ID, "predict-sample").click()


def upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "image").send_keys(str(path))
    driver.find_element(By.ID, "predict-upload").click()


def test_pick_a_sample_and_see_its_mask_and_shares(browser, site):
    from selenium.webdriver.common.by import By

    url, samples = site
    browser.get(url)
    offered = [o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#sample option")]
    assert offered == list(samples)[: webapp.MAX_SAMPLES]
    sample_id = offered[-1]
    pick_sample(browser, url, sample_id)
    legend = wait_for_result(browser)
    assert sample_id in browser.find_element(By.TAG_NAME, "h2").text
    check_legend(legend, api_shares(url, samples[sample_id].read_bytes()))
    width = browser.execute_script("return document.getElementById('mask-image').naturalWidth")
    with Image.open(samples[sample_id]) as image:
        assert width == min(image.width, webapp.DISPLAY_WIDTH)
    if os.environ.get("SEGLIB_SCREENSHOT"):
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(1280, height + 200)  # the window's frame is part of its size
        browser.save_screenshot(os.environ["SEGLIB_SCREENSHOT"])
        browser.set_window_size(1280, 1000)


def test_upload_an_image_then_a_non_image_and_keep_going(browser, site, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, samples = site
    first = next(iter(samples.values()))
    with Image.open(first) as image:
        photo = np.asarray(image.convert("RGB"))[::-1].copy()  # upside down: not a sample the server has
    png = tmp_path / "my photo.png"
    Image.fromarray(photo).save(png)
    browser.get(url)
    upload(browser, png)
    check_legend(wait_for_result(browser), api_shares(url, png.read_bytes()))
    assert "my photo.png" in browser.find_element(By.TAG_NAME, "h2").text

    text = tmp_path / "notes.png"
    text.write_text("a shopping list, not a picture")
    upload(browser, text)
    error = WebDriverWait(browser, WAIT_SECONDS).until(lambda d: d.find_element(By.ID, "error"))
    assert "not an image" in error.text
    assert not browser.find_elements(By.ID, "legend")

    sample_id = list(samples)[0]
    pick_sample(browser, url, sample_id)  # the error page is still a working page
    check_legend(wait_for_result(browser), api_shares(url, samples[sample_id].read_bytes()))

