"""Open every page of the built book in headless Chromium and fail on what a reader would see broken.

Usage: python scripts/browser_check.py _build/html [--screenshots DIR] [--chromium /usr/bin/chromium]
       [--page GLOB ...]

The pages are served from 127.0.0.1 by a local HTTP server, and the book must read offline:
every request that would leave that server (a CDN, a font, a tracker) is aborted before it is
sent, and it fails the page. A page also fails on

- a JavaScript error (an uncaught exception or a console error from the page itself), a
  same-origin resource that does not load (images included), an image that did not decode, an
  executed cell with error output (a traceback), a formula MathJax could not typeset;
- text a reader should never see, looked for in the page's article after MathJax has finished
  typesetting (``MathJax.startup.promise``), leaving out code inputs and code blocks (but not cell
  outputs, where printed tables and progress bars land): raw Markdown table rows (``| a | b |``,
  ``|---|``), raw ``\\(``, ``\\[`` or ``$$`` math (and ``$...$`` holding TeX), progress bars
  frozen at 0 % (`` 0%|``, ``0/18 [``), unrendered MyST roles (``{glue``, ``{cite``, ``{doc``,
  ``{ref`` ...) and ``/tmp/`` paths. Hidden content (collapsed solutions and outputs) is read too: it shows when opened.

The text detectors are pure functions (:func:`visible_lines` and the ``find_*`` functions) so that
tests can run them on small HTML fixtures without a browser.
"""
from __future__ import annotations

import argparse
import fnmatch
import functools
import html.parser
import http.server
import re
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

#: How long to wait for MathJax's first typesetting pass (milliseconds).
MATHJAX_TIMEOUT_MS = 20_000

#: Problems of one kind reported per page (the count is always given).
MAX_SHOWN = 3


# ------------------------------------------------------------------------------ text of a page
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
         "track", "wbr"}
_BLOCK = {"address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
          "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
          "main", "ol", "p", "pre", "section", "summary", "table", "tbody", "thead", "tfoot", "tr", "ul"}
#: Never text a reader reads as prose: scripts, styles, typeset math (MathJax's output), navigation.
_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "math", "mjx-container", "nav", "button",
              "select", "textarea"}
#: Code the author meant as code: a cell's input. (Code blocks and inline code are skipped outside outputs.)
_SKIP_CLASSES = {"cell_input", "headerlink"}


class _TextCollector(html.parser.HTMLParser):
    """Lines of text a reader sees in the page's article (see :func:`visible_lines`)."""

    def __init__(self, root):
        super().__init__(convert_charrefs=True)
        self.root = root  # "article", "main", "body", or None: the whole fragment
        self.stack = []  # (tag, skip, in_output, in_pre, in_html_output) per open element
        self.inside_root = 0
        self.lines: list[str] = []
        self.buf: list[str] = []

    # state of the innermost open element
    def _state(self):
        return self.stack[-1][1:] if self.stack else (False, False, False, False)

    def _break(self):
        text = "".join(self.buf)
        self.buf = []
        for line in text.split("\n"):
            line = line.rstrip()
            if line.strip():
                self.lines.append(line)

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        skip, in_output, in_pre, in_html = self._state()
        if tag == self.root:
            self.inside_root += 1
        in_output = in_output or "cell_output" in classes
        in_html = in_html or (in_output and "text_html" in classes)
        # code is skipped outside outputs, and inside HTML outputs (source shown by IPython.display.Code,
        # e.g. viz.show_source); printed text (stream outputs, text/plain) is kept
        skip = (skip or tag in _SKIP_TAGS or bool(classes & _SKIP_CLASSES) or "MathJax" in classes
                or (tag in ("pre", "code") and (not in_output or in_html)))
        if tag in _BLOCK or tag in ("td", "th"):
            if tag in ("td", "th"):
                self.buf.append("\t")
            else:
                self._break()
        if tag in _VOID:
            return
        self.stack.append((tag, skip, in_output, in_pre or tag == "pre", in_html))

    def handle_startendtag(self, tag, attrs):
        if tag in _BLOCK:
            self._break()

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        if not any(t == tag for t, *_ in self.stack):
            return  # a stray end tag
        while self.stack:
            t, *_ = self.stack.pop()
            if t == tag:
                break
        if tag == self.root:
            self.inside_root -= 1
        if tag in _BLOCK:
            self._break()

    def handle_data(self, data):
        skip, _, in_pre, _ = self._state()
        if skip or (self.root is not None and not self.inside_root):
            return
        if not in_pre:
            data = re.sub(r"\s+", " ", data)
            if data.startswith(" ") and (not self.buf or self.buf[-1].endswith((" ", "\n", "\t"))):
                data = data[1:]  # one space between words, as a browser shows it
        self.buf.append(data)

    def close(self):
        super().close()
        self._break()


def visible_lines(page_html: str) -> list[str]:
    """The lines of text a reader sees in a built page, as the detectors read them.

    Only the page's ``<article>`` (else ``<main>``, else ``<body>``, else the whole fragment) is
    read. Left out: scripts,
    styles, navigation, typeset math (``mjx-container``), a code cell's input, code blocks and
    inline code outside cell outputs, and code shown as HTML in an output (``viz.show_source``). Cell outputs are kept whole, since that is where printed
    Markdown tables and progress bars land. Block elements start new lines; in ``<pre>`` the
    line breaks are kept, elsewhere white space is collapsed as a browser shows it; table cells
    are joined by tabs (a rendered table is not Markdown text).
    """
    lower = page_html.lower()
    root = next((t for t in ("article", "main", "body") if f"<{t}" in lower), None)
    parser = _TextCollector(root)
    parser.feed(page_html)
    parser.close()
    return parser.lines


_TABLE_SEPARATOR = re.compile(r"\|\s*:?[-\u2013\u2014\u2212]+:?\s*\|")  # |---| (or the dash typography makes of it)
_ZERO_BAR = re.compile(r"(?:^|[^\d.])0%\|")  # tqdm: "desc:   0%|          | 0/18 [00:00<?, ?it/s]"
_ZERO_COUNT = re.compile(r"(?:^|[^\d/])0/\d+ \[")
_ROLE = re.compile(r"\{(?:glue(?::[a-z]+)?|cite(?::[a-z]+)?|doc|ref|numref|eq|term|download|prf:ref|"
                   r"bibliography|code-cell|exercise|solution)\}")
_TMP = re.compile(r"(?<![\w.~-])/tmp/")
_RAW_MATH = re.compile(r"\\\(|\\\[|\$\$"  # \( \[ $$, and $...$ holding TeX (a backslash, ^, _ or a brace)
                       r"|\$[^$\s][^$\n]*?[\\^_{][^$\n]*?\$")


def _clip(line: str, width: int = 100) -> str:
    line = line.strip()
    return line if len(line) <= width else line[:width] + "…"


def find_markdown_table_rows(lines) -> list[str]:
    """Lines that are Markdown table syntax shown as text: ``| a | b |`` rows and ``|---|`` separators."""
    out = []
    for line in lines:
        s = line.strip()
        if _TABLE_SEPARATOR.search(s) or (s.startswith("|") and s.count("|") >= 3):
            out.append(_clip(s))
    return out


def find_raw_math(lines) -> list[str]:
    """Lines with TeX delimiters ``\\(``, ``\\[`` or ``$$``, or ``$...$`` holding TeX: math MathJax did not typeset."""
    return [_clip(line) for line in lines if _RAW_MATH.search(line)]


def find_zero_progress(lines) -> list[str]:
    """Progress bars frozen at 0 %: ``  0%|`` or ``0/18 [`` (a tqdm bar printed once, never updated)."""
    return [_clip(line) for line in lines if _ZERO_BAR.search(line) or _ZERO_COUNT.search(line)]


def find_unrendered_roles(lines) -> list[str]:
    """MyST roles and directives left as text: ``{glue:text}``, ``{cite}``, ``{doc}``, ``{ref}`` ..."""
    return [_clip(line) for line in lines if _ROLE.search(line)]


def find_tmp_paths(lines) -> list[str]:
    """Lines showing a ``/tmp/`` path (a build machine's scratch folder means nothing to a reader)."""
    return [_clip(line) for line in lines if _TMP.search(line)]


#: The text detectors: name -> function of the page's lines.
TEXT_DETECTORS = {
    "raw Markdown table": find_markdown_table_rows,
    "raw math": find_raw_math,
    "progress bar at 0 %": find_zero_progress,
    "unrendered role": find_unrendered_roles,
    "/tmp/ path": find_tmp_paths,
}


def text_problems(page_html: str) -> dict:
    """``{detector name: [offending lines]}`` for the detectors that found something in ``page_html``."""
    lines = visible_lines(page_html)
    found = {name: fn(lines) for name, fn in TEXT_DETECTORS.items()}
    return {name: hits for name, hits in found.items() if hits}


def format_hits(name: str, hits) -> list[str]:
    """The report lines for one detector: its count and the first :data:`MAX_SHOWN` hits."""
    shown = "; ".join(repr(h) for h in hits[:MAX_SHOWN])
    more = f" (and {len(hits) - MAX_SHOWN} more)" if len(hits) > MAX_SHOWN else ""
    return [f"{name}: {len(hits)} line{'s' if len(hits) != 1 else ''}: {shown}{more}"]


def is_local(url: str, base: str) -> bool:
    """True for a request the local server answers (or that needs no network: data:, blob:, about:)."""
    if url.startswith(("data:", "blob:", "about:")):
        return True
    return url == base or url.startswith(base + "/")


# ------------------------------------------------------------------------------ the browser part
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D401 - silence the access log
        pass


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
            return  # the browser dropped a connection it no longer needed
        super().handle_error(request, client_address)


def serve(root: Path):
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def pages(root: Path, patterns=None) -> list[Path]:
    skip = {"genindex.html", "search.html"}
    found = sorted(
        p for p in root.rglob("*.html")
        if p.name not in skip and not any(part.startswith("_") for part in p.relative_to(root).parts)
    )
    if patterns:
        found = [p for p in found if any(fnmatch.fnmatch(p.relative_to(root).as_posix(), g) for g in patterns)]
    return found


_WAIT_FOR_MATHJAX = """async (timeout) => {
  if (!document.querySelector('.math, mjx-container')) return 'no math';
  const mj = window.MathJax;
  if (!mj || !mj.startup || !mj.startup.promise) return 'MathJax not loaded';
  const done = await Promise.race([mj.startup.promise.then(() => 'typeset'),
                                   new Promise(r => setTimeout(() => r('timeout'), timeout))]);
  return done;
}"""


def _evaluate_settled(page, script, arg=None, tries: int = 3):
    """``page.evaluate`` that survives a navigation the page starts itself (the index's redirect)."""
    for attempt in range(tries):
        try:
            return page.evaluate(script, arg)
        except Exception as e:  # playwright Error: "Execution context was destroyed ... navigation"
            if "context was destroyed" not in str(e) or attempt == tries - 1:
                raise
            page.wait_for_load_state("load")


def check_page(page, url: str, base: str) -> dict:
    problems, external = [], []

    def on_route(route):
        req_url = route.request.url
        if is_local(req_url, base):
            route.continue_()
        else:
            if req_url not in external:
                external.append(req_url)
            route.abort("blockedbyclient")

    def on_console(msg):
        if msg.type == "error":
            loc = (msg.location or {}).get("url", "")
            if loc and not is_local(loc, base):
                if loc not in external:
                    external.append(loc)
                return
            if "ERR_BLOCKED_BY_CLIENT" in msg.text:
                return  # the console's echo of an external request aborted here (reported below)
            problems.append(f"console error: {msg.text} ({loc})")

    def on_pageerror(exc):
        problems.append(f"javascript error: {exc}")

    def on_requestfailed(req):
        if is_local(req.url, base):
            problems.append(f"failed to load {req.url} ({req.failure})")
        elif req.url not in external:
            external.append(req.url)

    def on_response(resp):
        if is_local(resp.url, base) and resp.status >= 400:
            problems.append(f"HTTP {resp.status} for {resp.url}")

    def on_websocket(ws):
        if not is_local(ws.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1), base):
            external.append(ws.url)

    listeners = {"console": on_console, "pageerror": on_pageerror, "requestfailed": on_requestfailed,
                 "response": on_response, "websocket": on_websocket}
    n_images, mathjax, found = 0, "not checked", {}
    page.route("**/*", on_route)
    for ev, fn in listeners.items():
        page.on(ev, fn)
    try:
        try:
            page.goto(url, wait_until="load", timeout=60_000)
        except Exception as e:  # playwright's TimeoutError / Error: the page itself did not load
            problems.append(f"page did not load: {type(e).__name__}: {str(e).splitlines()[0]}")
            return {"problems": problems, "external": list(external), "images": 0, "mathjax": mathjax,
                    "detectors": {}}
        mathjax = _evaluate_settled(page, _WAIT_FOR_MATHJAX, MATHJAX_TIMEOUT_MS)
        page.wait_for_timeout(300)
        if mathjax == "timeout":
            problems.append(f"MathJax did not finish typesetting within {MATHJAX_TIMEOUT_MS / 1000:.0f} s")
        broken = page.eval_on_selector_all(
            "img", "els => els.filter(e => e.complete && e.naturalWidth === 0 && "
            "e.src.startsWith(location.origin)).map(e => e.src)"
        )
        problems += [f"image did not load: {src}" for src in broken]
        n_images = page.eval_on_selector_all("img", "els => els.filter(e => e.naturalWidth > 0).length")
        errors = page.eval_on_selector_all(ERROR_OUTPUT_SELECTOR, "els => els.map(e => e.innerText.slice(0, 300))")
        problems += [f"error output in page: {t!r}" for t in errors]
        merrors = page.eval_on_selector_all("mjx-merror", "els => els.map(e => e.textContent.slice(0, 100))")
        problems += [f"MathJax could not typeset: {t!r}" for t in merrors]
        found = text_problems(page.content())
        for name, hits in found.items():
            problems += format_hits(name, hits)
        if external:
            shown = ", ".join(external[:MAX_SHOWN]) + (f" (and {len(external) - MAX_SHOWN} more)"
                                                       if len(external) > MAX_SHOWN else "")
            problems.append(f"request leaving the local server (aborted): {len(external)}: {shown}")
    finally:
        for ev, fn in listeners.items():
            page.remove_listener(ev, fn)
        page.unroute("**/*", on_route)
    return {"problems": problems, "external": list(external), "images": n_images, "mathjax": mathjax,
            "detectors": {name: len(hits) for name, hits in found.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("html_dir", type=Path)
    ap.add_argument("--screenshots", type=Path, default=None, help="write a full-page PNG of every page here")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--page", action="append", default=None, metavar="GLOB",
                    help="check only pages matching GLOB (relative to html_dir, e.g. 'book/05*'); repeatable")
    args = ap.parse_args(argv)
    root = args.html_dir.resolve()
    if not (root / "index.html").exists():
        print(f"no built book at {root} (index.html missing): build it first")
        return 1
    todo = pages(root, args.page)
    if not todo:
        print(f"no page of {root} matches {args.page}")
        return 1
    from playwright.sync_api import sync_playwright

    httpd, base = serve(root)
    failed = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
        page = context.new_page()
        for path in todo:
            rel = path.relative_to(root).as_posix()
            res = check_page(page, f"{base}/{rel}", base)
            if args.screenshots:
                shot = args.screenshots / (rel.replace("/", "__").removesuffix(".html") + ".png")
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)
            status = "FAIL" if res["problems"] else "ok"
            failed += bool(res["problems"])
            math = "" if res["mathjax"] == "no math" else f", math: {res['mathjax']}"
            print(f"{status:4s} {rel}: {res['images']} images{math}")
            for p in res["problems"]:
                print(f"       - {p}")
        browser.close()
    httpd.shutdown()
    print(f"browser check: {len(todo) - failed} pages ok, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
