"""`uim report`: seconds to write the report (in process, median of 3), its size, and seconds until
Debian's headless Chromium has loaded it (median of 3 fresh pages); optionally a screenshot of its top.

    python -m pipelines.bench_report RUN [--out FILE] [--shot docs/report.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def render_seconds(html: Path, shot: Path | None, chromium: str = "/usr/bin/chromium") -> float:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        ctx = pw.chromium.launch_persistent_context(profile, executable_path=chromium, headless=True,
                                                    args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 1500})
        for _ in range(3):
            page = ctx.new_page()
            t = time.perf_counter()
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            times.append(time.perf_counter() - t)
            if shot is not None:
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot))
                shot = None
            page.close()
        ctx.close()
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--out", default=None, help="report file (default RUN/report.html)")
    ap.add_argument("--shot", default=None, help="save a screenshot of the top of the page here")
    args = ap.parse_args()
    from uimdata.report import write_report

    writes = []
    for _ in range(3):
        t = time.perf_counter()
        path = write_report(args.run, args.out)
        writes.append(time.perf_counter() - t)
    res = {"run": args.run, "report": str(path), "mb": round(path.stat().st_size / 1e6, 2),
           "write_s": round(statistics.median(writes), 2),
           "chromium_load_s": round(render_seconds(path, Path(args.shot) if args.shot else None), 2)}
    json.dump(res, sys.stdout)
    print()


if __name__ == "__main__":
    main()
