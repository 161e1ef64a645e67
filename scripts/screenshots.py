"""Retake the screenshots in docs/screenshots/ with Playwright against the running app (the shipped model), the
camera being Chromium's fake one playing the two example faces (app/examples/two_faces.jpg) standing still.

    python scripts/screenshots.py [--out docs/screenshots]      # needs Chromium (scripts/setup.sh)

webcam.png (1280×900, the live view in the page), phone.png (390×844, the same on a phone), upload.png and
video.png (each tab after clicking its first or second example).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python scripts/screenshots.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from fer.serving.model_files import DEFAULT_ONNX
    from fer_app.layout import EXAMPLES_DIR
    from fer_app.testing import CHROMIUM, FLAGS, running_app, write_y4m

    args.out.mkdir(parents=True, exist_ok=True)
    still = np.asarray(Image.open(EXAMPLES_DIR / "two_faces.jpg").convert("RGB"))
    with tempfile.TemporaryDirectory() as folder, running_app(DEFAULT_ONNX) as (url, _, _), sync_playwright() as pw:
        camera = write_y4m(Path(folder) / "still.y4m", [still] * 5)
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=[*FLAGS, f"--use-file-for-fake-video-capture={camera}"])
        for name, viewport, scale in (("webcam.png", (1280, 900), 1), ("phone.png", (390, 844), 2)):
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]},
                                          device_scale_factor=scale, is_mobile=viewport[0] < 500,
                                          permissions=["camera"])
            page = context.new_page()
            page.goto(url)
            page.click("#device-view .fer-start:enabled", timeout=120_000)
            page.wait_for_function("performance.getEntriesByName('fer-frame').length >= 30", timeout=120_000)
            page.screenshot(path=str(args.out / name))
            if name == "webcam.png":
                page.click("#device-view .fer-start")  # stop the camera
                page.click("button[role=tab]:has-text('Upload')")
                page.locator("#upload-examples").get_by_role("button").nth(1).click()  # two_faces.jpg
                page.wait_for_selector("#status:has-text('Found 2 faces')", timeout=60_000)
                page.wait_for_selector("#result img", timeout=30_000)
                page.screenshot(path=str(args.out / "upload.png"), full_page=True)
                page.click("button[role=tab]:has-text('Video')")
                page.locator("#clip-examples").get_by_role("button").first.click()
                page.wait_for_selector("#clip-plot img", timeout=120_000)
                page.screenshot(path=str(args.out / "video.png"), full_page=True)
            context.close()
        browser.close()
    for name in ("webcam.png", "phone.png", "upload.png", "video.png"):
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
