"""Regenerate docs/label_page.png: the labelling page on the sample county, in headless Chromium.

    python docs/label_screenshot.py        (needs chromium + chromedriver, the dev extra)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(out: Path = ROOT / "docs" / "label_page.png") -> None:
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    from landuse.cli import main as cli
    from landuse.label import LabelSession, serve_session

    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for year in ("2016", "2022"):
            assert cli(["-q", "classify", str(ROOT / "sample_rasters" / f"{year}.tif"), "--period", year,
                        "--out", str(t / year), "--scheduler", "threads"]) == 0
        assert cli(["-q", "change", str(t / "2016"), str(t / "2022"), "--out", str(t / "change")]) == 0
        session = LabelSession.open(t / "2016", t / "labels", change_dir=t / "change", n=12)
        run = session.runs[0]
        for it in session.items[:3]:  # a few answers given, so progress and the map show them
            session.label(it.key, str(run.predicted[run.index_of(it.row, it.col)]))
        server, url = serve_session(session, port=0)
        opts = webdriver.ChromeOptions()
        opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--window-size=1200,760", "--hide-scrollbars"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
        try:
            driver.get(url)
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "return document.body.dataset.ready === '1' && "
                "Array.from(document.querySelectorAll('.view img')).every(i => i.dataset.loaded === '1')"))
            time.sleep(0.3)
            driver.save_screenshot(str(t / "shot.png"))
        finally:
            driver.quit()
            server.stop()
        img = Image.open(t / "shot.png").convert("RGB")
        img.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:2]))
