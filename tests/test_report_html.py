"""The HTML reports of a real run, comparison and advice, rendered in headless Chromium (Debian's `chromium`).

A copy of each report gets a small script (the report itself has none) that records every error event and
console error or warning, and, once the page has loaded, writes into the DOM: each image's decoded size, the
main table's rows and the page's width against the viewport. Chromium's ``--dump-dom`` then hands the DOM
back. The phone check loads the copy in a 360-px-wide frame (headless windows are at least 500 px wide).
Skipped, with the reason, where no chromium is installed (``make test`` installs it when run as root).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from multitask.config import build_config

pytestmark = pytest.mark.slow

PHONE_WIDTH = 360

CHECK = """<script>
(() => {
  const problems = [];
  window.addEventListener("error", (e) => problems.push("error: " + (e.message || (e.target && (e.target.src
    || e.target.href)) || e.type)), true);
  window.addEventListener("securitypolicyviolation", (e) => problems.push("csp: " + e.blockedURI));
  for (const level of ["error", "warn"]) {
    const original = console[level];
    console[level] = (...args) => { problems.push(level + ": " + args.join(" ")); original.apply(console, args); };
  }
  window.addEventListener("load", () => {
    const root = document.documentElement;
    const result = {
      problems,
      images: [...document.images].map((i) => ({complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
                                              shown: i.getBoundingClientRect().width})),
      rows: [...document.querySelectorAll("#tasks > tbody > tr > th")].map((th) => th.textContent),
      footer: document.querySelectorAll("#tasks > tfoot > tr").length,
      scrollWidth: root.scrollWidth, innerWidth: window.innerWidth,
      boxes: [...document.querySelectorAll(".scroll, figure, img")].map((b) => b.getBoundingClientRect().right),
      headings: [...document.querySelectorAll("h2")].map((h) => h.textContent),
    };
    const out = document.createElement("pre");
    out.id = "report-check";
    out.textContent = JSON.stringify(result);
    document.body.appendChild(out);
  });
})();
</script>"""

PHONE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe id="page" src="checked.html" style="width:{width}px;height:740px;border:0"></iframe>
<script>
document.getElementById("page").addEventListener("load", () => {{
  const page = document.getElementById("page").contentDocument;
  const check = page && page.getElementById("report-check");
  const out = document.createElement("pre");
  out.id = "phone-check";
  out.textContent = check ? check.textContent : "no check: " + (page ? "script did not run" : "no access");
  document.body.appendChild(out);
}});
</script></body></html>"""


def find_chromium() -> str | None:
    """MULTITASK_CHROMIUM, or Debian's chromium (or chromium-browser / google-chrome) on PATH."""
    given = os.environ.get("MULTITASK_CHROMIUM")
    if given:
        return given
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no chromium to render the HTML reports in: install Debian's chromium (`make test` does when "
                    "run as root with apt-get) or set MULTITASK_CHROMIUM")
    try:
        done = subprocess.run([path, *HEADLESS, "--dump-dom", "data:text/html,<p id=ok>ok</p>"], capture_output=True,
                              text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"{path} does not start: {error}")
    if 'id="ok"' not in done.stdout:
        pytest.skip(f"{path} does not render a page (exit {done.returncode}): {done.stderr[-500:]}")
    return path


def render(chromium: str, page: Path, element: str, window: str = "1280,900") -> tuple[dict, str]:
    """Load `page` headless, return the JSON that its script put in #`element` and Chromium's console log."""
    done = subprocess.run(
        [chromium, *HEADLESS, "--allow-file-access-from-files", "--enable-logging=stderr", "--v=0",
         f"--window-size={window}", "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120,
        check=False)
    found = re.search(rf'<pre id="{element}">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium gave no #{element} (exit {done.returncode}): {done.stderr[-2000:]}"
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(text), "\n".join(console)


def check_report(chromium: str, report: Path, tasks: list[str], n_images: int) -> dict:
    """Every check on one report, at a laptop's width and at a phone's; returns the laptop result."""
    html = report.read_text()
    assert "<script" not in html and not re.search(r"""(src|href)=["']?(https?:|//)""", html)
    folder = report.parent / "browser-check"
    folder.mkdir(exist_ok=True)
    checked = folder / "checked.html"
    checked.write_text(html.replace("<head>", "<head>\n" + CHECK, 1))
    (folder / "phone.html").write_text(PHONE.format(width=PHONE_WIDTH))
    laptop, console = render(chromium, checked, "report-check")
    phone, phone_console = render(chromium, folder / "phone.html", "phone-check", window="800,900")
    for result, log in ((laptop, console), (phone, phone_console)):
        assert result["problems"] == [] and log == "", (result["problems"], log)
        assert len(result["images"]) == n_images
        assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in result["images"]), result["images"]
        assert result["rows"] == tasks and result["footer"] <= 1
    assert phone["innerWidth"] == PHONE_WIDTH
    assert phone["scrollWidth"] <= phone["innerWidth"], "the page scrolls sideways on a phone"
    assert max(phone["boxes"]) <= PHONE_WIDTH + 0.5  # wide tables and plots scroll inside their own box
    assert laptop["scrollWidth"] <= laptop["innerWidth"]
    return laptop


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory, tiny_features: Path) -> dict[str, Path]:
    """A tiny run, a shared-vs-separate comparison and an advice on the same generated feature table."""
    from multitask.advise import advise
    from multitask.compare import compare
    from multitask.pipeline import train_run

    root = tmp_path_factory.mktemp("html")
    config = build_config({"root": str(root), "name": "tiny", "data": {"path": str(tiny_features),
                                                                       "tasks": ["a", "b", "c"]},
                           "model": {"trunk": "mlp", "trunk_options": {"hidden": [8]}},
                           "train": {"epochs": 2, "progress": False, "lr": 0.01}})
    run = train_run(config, quiet=True)
    compare(config, approaches=("shared", "separate"), out_dir=root / "cmp", n_boot=100)
    advise(config, probe_steps=30, capacity_check=True, threads=1, out_dir=root / "advice")
    return {"run": run.path, "compare": root / "cmp", "advice": root / "advice"}


def test_run_report_in_a_browser(chromium: str, made: dict[str, Path]) -> None:
    result = check_report(chromium, made["run"] / "report.html", ["a", "b", "c"], n_images=10)
    assert result["headings"][:3] == ["Settings", "Test metrics", "Validation metrics"]


def test_comparison_report_in_a_browser(chromium: str, made: dict[str, Path]) -> None:
    result = check_report(chromium, made["compare"] / "report.html", ["a", "b", "c"], n_images=9)
    assert "AP per task" in result["headings"] and "Cost" in result["headings"]
    html = (made["compare"] / "report.html").read_text()
    for text in ("<dt>trunk</dt>", "<dt>epochs (planned)</dt>", "<dt>seed</dt>", "the interval excludes 0",
                 "not significant"):
        assert text in html
    # each separate network's own report is a page of its own, with its one task
    check_report(chromium, made["compare"] / "separate" / "b" / "report.html", ["b"], n_images=5)


def test_advice_report_in_a_browser(chromium: str, made: dict[str, Path]) -> None:
    result = check_report(chromium, made["advice"] / "report.html", ["a", "b", "c"], n_images=3)
    assert "Per task" in result["headings"] and "Evidence: relatedness" in result["headings"]
    assert "Recommendation:" in (made["advice"] / "report.html").read_text()
