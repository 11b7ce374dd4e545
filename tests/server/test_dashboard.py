"""The dashboard in a real headless browser (Debian's chromium and its driver): sign in with a token, the
example job appears and turns succeeded live with its cost, its tasks, logs and results, usage over time.
Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import httpx
import pytest
import yaml

from tests.conftest import REPO
from tests.server.test_api import example_files
from tests.server.test_live_server import free_port, wait_until_up

ARTIFACTS = REPO / "test-artifacts"


def ensure_chromium() -> None:
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.geteuid() != 0:
        pytest.skip("chromium and chromedriver are not installed and this is not root (apt-get install "
                    "chromium chromium-driver)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"], env=env, check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def browser():
    ensure_chromium()
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    driver.implicitly_wait(10)  # each lookup waits for the page a click or a reload brings
    yield driver
    driver.quit()


def test_a_job_shows_live_with_its_cost_tasks_logs_and_usage(squall, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    code, made = squall.json("token", "create", "--user", "ana", "--org", "acme", "--role", "admin")
    port = free_port()
    server = squall.start("server", "--port", str(port), "--local-site")
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        wait_until_up(server, port)
        browser.get(f"{url}/dashboard")
        assert browser.current_url.endswith("/dashboard/sign-in")  # a person is sent to sign in
        browser.find_element(By.ID, "token").send_keys("sq_000000000000_" + "x" * 43)
        browser.find_element(By.ID, "sign-in").click()
        assert "not valid" in browser.find_element(By.ID, "error").text
        browser.find_element(By.ID, "token").send_keys(made["token"])
        browser.find_element(By.ID, "sign-in").click()
        browser.save_screenshot(str(ARTIFACTS / "dashboard-signed-in.png"))
        assert "No jobs yet" in browser.find_element(By.ID, "jobs").text, browser.page_source[:500]
        job = httpx.post(f"{url}/api/v1/jobs", files=example_files(),
                         headers={"Authorization": f"Bearer {made['token']}"}).json()["data"]
        row = f"job-{job['id']}"
        seen = set()

        def finished(driver) -> bool:  # no reload from here: the page follows the event stream
            cells = driver.find_elements(By.CSS_SELECTOR, f"#{row} .status")
            seen.update(cell.text for cell in cells)
            return bool(cells) and cells[0].text == "succeeded"

        WebDriverWait(browser, 90, poll_frequency=0.1).until(finished)
        assert browser.find_element(By.CSS_SELECTOR, f"#{row} .cost").text == "free"
        browser.save_screenshot(str(ARTIFACTS / "dashboard-jobs.png"))
        browser.find_element(By.LINK_TEXT, job["id"]).click()
        assert len(browser.find_elements(By.CSS_SELECTOR, "#tasks tbody tr")) == 4
        assert browser.find_element(By.ID, "status").text == "succeeded"
        assert browser.find_elements(By.PARTIAL_LINK_TEXT, "summary.csv")
        browser.save_screenshot(str(ARTIFACTS / "dashboard-job.png"))
        browser.get(f"{url}/dashboard/usage")
        bars = browser.find_elements(By.CSS_SELECTOR, "#usage-chart rect")
        assert len(bars) == 14 and any(int(bar.get_attribute("height")) > 0 for bar in bars)
        assert job["id"] in browser.find_element(By.ID, "usage").text
        browser.save_screenshot(str(ARTIFACTS / "dashboard-usage.png"))
        browser.get(f"{url}/dashboard/sites")
        assert "local" in browser.find_element(By.ID, "sites").text
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


XSS_PAGE = "<html><body><script>localStorage.setItem('xss', document.cookie || 'ran')</script></body></html>"
XSS_SVG = ('<svg xmlns="http://www.w3.org/2000/svg"><script>localStorage.setItem("xss", "svg")</script>'
           '</svg>')


def test_a_results_page_with_script_runs_nothing_in_the_viewers_browser(squall, browser, tmp_path):
    """A job's output page.html (and an SVG) opened from the dashboard's origin: downloaded, never rendered —
    the script that would store the viewer's session never runs."""
    code, made = squall.json("token", "create", "--user", "ana", "--org", "acme", "--role", "admin")
    write = ("import os; out = os.environ['SQUALL_OUTPUT_DIR']; "
             f"open(out + '/page.html', 'w').write({XSS_PAGE!r}); open(out + '/image.svg', 'w').write({XSS_SVG!r})")
    spec = yaml.safe_dump({"name": "xss", "command": ["python3", "-c", write], "outputs": ["*"]})
    port = free_port()
    server = squall.start("server", "--port", str(port), "--local-site")
    url, bearer = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {made['token']}"}
    try:
        wait_until_up(server, port)
        job = httpx.post(f"{url}/api/v1/jobs", files=[("spec", ("job.yaml", spec.encode()))], headers=bearer).json()
        assert job["success"], job
        job_id = job["data"]["id"]
        for _ in range(300):
            if httpx.get(f"{url}/api/v1/jobs/{job_id}", headers=bearer).json()["data"]["phase"] == "done":
                break
            time.sleep(0.2)
        for name in ("page.html", "image.svg"):
            served = httpx.get(f"{url}/api/v1/jobs/{job_id}/results/task-0/{name}", headers=bearer)
            assert served.status_code == 200 and served.headers["content-type"] == "application/octet-stream"
            assert served.headers["content-disposition"].startswith("attachment")
            assert served.headers["x-content-type-options"] == "nosniff"
            assert served.headers["content-security-policy"].startswith("sandbox")
        from selenium.webdriver.common.by import By

        browser.get(f"{url}/dashboard/sign-in")
        browser.find_element(By.ID, "token").send_keys(made["token"])
        browser.find_element(By.ID, "sign-in").click()
        browser.get(f"{url}/dashboard/jobs/{job_id}")
        for link in browser.find_elements(By.PARTIAL_LINK_TEXT, "task-0/"):
            assert link.get_attribute("download") is not None
        for name in ("page.html", "image.svg"):
            browser.get(f"{url}/api/v1/jobs/{job_id}/results/task-0/{name}")
        browser.get(f"{url}/dashboard")
        assert browser.execute_script("return window.localStorage.getItem('xss')") is None
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_the_api_documentation_renders_from_the_servers_own_assets(squall, browser):
    from selenium.webdriver.common.by import By

    port = free_port()
    server = squall.start("server", "--port", str(port), "--take-over-every", "0")
    try:
        wait_until_up(server, port)
        browser.get(f"http://127.0.0.1:{port}/api/v1/docs")
        assert "Squall" in browser.find_element(By.CSS_SELECTOR, ".swagger-ui .info .title").text
        assert browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")  # the routes, from openapi.json
        browser.save_screenshot(str(ARTIFACTS / "api-docs.png"))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
