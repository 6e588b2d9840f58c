"""A headless Chromium with WebGPU, driven over WebDriver's HTTP protocol
(chromedriver), with the standard library only: the tools that load the
browser demo and the web benchmark share it."""
import json
import socket
import subprocess
import time
import urllib.request

# WebGPU on SwiftShader in headless Chromium; unquantised timestamps so that
# kernels under 0.1 ms can be timed.
CHROME_ARGS = [
    "--headless=new", "--no-sandbox", "--enable-unsafe-webgpu", "--disable-dev-shm-usage",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--enable-dawn-features=allow_unsafe_apis",
    "--disable-dawn-features=timestamp_quantization",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())["value"]


def run_page(url, done, result, chromedriver="/usr/bin/chromedriver", timeout_s=600):
    """Opens `url`, waits until the script `done` returns true, then returns
    what the script `result` returns."""
    port = free_port()
    driver = subprocess.Popen([chromedriver, f"--port={port}"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                _call(base, "GET", "/status")
                break
            except OSError:
                time.sleep(0.1)
        session = _call(base, "POST", "/session", {"capabilities": {"alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": {"args": CHROME_ARGS}}}})["sessionId"]
        try:
            _call(base, "POST", f"/session/{session}/url", {"url": url})
            deadline = time.time() + timeout_s
            while not _call(base, "POST", f"/session/{session}/execute/sync",
                            {"script": done, "args": []}):
                if time.time() > deadline:
                    raise TimeoutError(f"{url} did not finish within {timeout_s} s")
                time.sleep(0.2)
            return _call(base, "POST", f"/session/{session}/execute/sync",
                         {"script": result, "args": []})
        finally:
            _call(base, "DELETE", f"/session/{session}")
    finally:
        driver.terminate()
