"""Open every page of the built book in headless Chromium and fail on what a reader would see broken.

Usage: python scripts/browser_check.py _build/html [--screenshots DIR] [--chromium /usr/bin/chromium]

The pages are served from 127.0.0.1 by a local HTTP server. A page fails when it has
a JavaScript error (an uncaught exception or a console error from the page itself), a
same-origin resource that does not load (images included), an image that did not
decode, or an executed cell with error output (a traceback). Requests to other hosts
are recorded but do not fail the page: the book must be readable offline, and those
are CDN copies of optional scripts (MathJax, the ipywidgets manager), for which each
chapter also shows a static figure.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import socketserver
import sys
import threading
from pathlib import Path

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]

ERROR_OUTPUT_SELECTOR = ".output.error, .output.traceback, .cell_output .traceback"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D401 - silence the access log
        pass


def serve(root: Path):
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def pages(root: Path) -> list[Path]:
    skip = {"genindex.html", "search.html"}
    return sorted(
        p for p in root.rglob("*.html")
        if p.name not in skip and not any(part.startswith("_") for part in p.relative_to(root).parts)
    )


def check_page(page, url: str, base: str) -> dict:
    problems, external = [], set()

    def on_console(msg):
        if msg.type == "error":
            loc = (msg.location or {}).get("url", "")
            text = msg.text
            if "Failed to load resource" in text and loc and not loc.startswith(base):
                external.add(loc)
                return
            if loc and not loc.startswith(base) and loc != "":
                external.add(loc)
                return
            problems.append(f"console error: {text} ({loc})")

    def on_pageerror(exc):
        problems.append(f"javascript error: {exc}")

    def on_requestfailed(req):
        if req.url.startswith(base):
            problems.append(f"failed to load {req.url} ({req.failure})")
        else:
            external.add(req.url)

    def on_response(resp):
        if resp.url.startswith(base) and resp.status >= 400:
            problems.append(f"HTTP {resp.status} for {resp.url}")

    page.on("console", on_console)
    page.on("pageerror", on_pageerror)
    page.on("requestfailed", on_requestfailed)
    page.on("response", on_response)
    page.goto(url, wait_until="load", timeout=60_000)
    page.wait_for_timeout(500)
    broken = page.eval_on_selector_all(
        "img", "els => els.filter(e => e.complete && e.naturalWidth === 0 && "
        "e.src.startsWith(location.origin)).map(e => e.src)"
    )
    problems += [f"image did not load: {src}" for src in broken]
    n_images = page.eval_on_selector_all("img", "els => els.filter(e => e.naturalWidth > 0).length")
    errors = page.eval_on_selector_all(ERROR_OUTPUT_SELECTOR, "els => els.map(e => e.innerText.slice(0, 300))")
    problems += [f"error output in page: {t!r}" for t in errors]
    for ev in ("console", "pageerror", "requestfailed", "response"):
        page.remove_listener(ev, {"console": on_console, "pageerror": on_pageerror,
                                  "requestfailed": on_requestfailed, "response": on_response}[ev])
    return {"problems": problems, "external": sorted(external), "images": n_images}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("html_dir", type=Path)
    ap.add_argument("--screenshots", type=Path, default=None)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    root = args.html_dir.resolve()
    if not (root / "index.html").exists():
        print(f"no built book at {root} (index.html missing): build it first")
        return 1
    from playwright.sync_api import sync_playwright

    httpd, base = serve(root)
    failed = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        for path in pages(root):
            rel = path.relative_to(root).as_posix()
            res = check_page(page, f"{base}/{rel}", base)
            if args.screenshots:
                shot = args.screenshots / (rel.replace("/", "__").removesuffix(".html") + ".png")
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)
            status = "FAIL" if res["problems"] else "ok"
            failed += bool(res["problems"])
            ext = f", {len(res['external'])} offline external requests" if res["external"] else ""
            print(f"{status:4s} {rel}: {res['images']} images{ext}")
            for p in res["problems"]:
                print(f"       - {p}")
        browser.close()
    httpd.shutdown()
    print(f"browser check: {len(pages(root)) - failed} pages ok, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
