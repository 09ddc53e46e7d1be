"""Make docs/webmap.png: the web map of the bundled sample county in headless Chromium.

    .venv/bin/python docs/webmap_screenshot.py

Classifies ``sample_rasters/2016.tif`` and ``2022.tif`` with the bundled model into a temporary
folder, compares them, writes the report with ``--basemap none`` and saves a screenshot with the
swipe near the middle and one change popup open (a palette PNG, to keep it small).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    from landuse.cli import main as landuse

    work = Path(tempfile.mkdtemp(prefix="webmap-shot-"))
    try:
        for period in ("2016", "2022"):
            grid = ["--grid", str(work / "2016" / "grid.json")] if period == "2022" else []
            assert landuse(["-q", "classify", str(ROOT / "sample_rasters" / f"{period}.tif"), "--period", period,
                            "--out", str(work / period), *grid]) == 0
        assert landuse(["-q", "change", str(work / "2016"), str(work / "2022"), "--out", str(work / "change")]) == 0
        html = work / "report.html"
        assert landuse(["-q", "report", str(work / "2016"), str(work / "2022"), "--change", str(work / "change"),
                        "--out", str(html), "--basemap", "none"]) == 0
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium") or "chromium"
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--window-size=1200,760", "--proxy-server=127.0.0.1:9", f"--user-data-dir={work / 'profile'}"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "chromedriver"))
        try:
            driver.get(html.as_uri())
            WebDriverWait(driver, 30).until(lambda d: d.execute_script("return !!(window.landuseReport && window.landuseReport.ready)"))
            driver.execute_script(
                """var R = window.landuseReport; R.swipe.set(0.62);
                   var l = R.layers.change.getLayers().filter(function (x) { return x.feature.properties.status === 'changed'; })[0];
                   if (l) { l.openPopup(); }""")
            time.sleep(0.6)
            shot = work / "shot.png"
            driver.save_screenshot(str(shot))
        finally:
            driver.quit()
        out = ROOT / "docs" / "webmap.png"
        Image.open(shot).convert("RGB").quantize(colors=192, dither=Image.Dither.NONE).save(out, optimize=True)
        print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
