"""Open every page of the built book in headless Chromium and report what a reader would see broken.

    python scripts/check_book.py [_build/html] [--browser chromium]

Each HTML page is loaded from disk (``file://``) with the network switched off, as in an offline
copy of the book. A small probe script, put at the top of the page before it loads, records
JavaScript errors and failed resource loads, waits for MathJax to finish typesetting, and then
writes what it saw (canvases, images, MathJax version) into the page; Chromium's ``--dump-dom``
hands back that final DOM. :func:`analyse_page` then reads the DOM alone (no browser), so it is
unit-tested on hand-made snippets (``tests/test_check_book.py``).

A page fails on:

* an error output: a traceback, an ``output_error``/``traceback`` output, or a line of a cell's
  output that starts like ``ValueError: ...``;
* a JavaScript error (uncaught exception, ``console.error``, unhandled promise rejection) or a
  script, style sheet or image that fails to load;
* a canvas with zero size or blank (one colour: nothing drawn; the probe makes WebGL contexts
  keep their drawing buffer so that their pixels can be read), or a 3-D / plot viewer element
  (tgdmat.viewer, 3Dmol, plotly, nglview) without a canvas or SVG inside;
* ``NaN`` (or ``<NA>``, ``NaT``) in a table, or a table cell that pandas cut short (``...``);
* a missing figure: an ``<img>`` whose file is not there or that does not load;
* math left as raw LaTeX after MathJax ran (``$$``, ``\\(``, ``\\[``, ``\\begin{``, ``$\\alpha$``),
  math on a page where MathJax did not load, and MathJax loaded from a CDN instead of the
  copy bundled in ``book/_static/mathjax/``.

Prints one line per problem (``page: problem``) and exits 1 when there is any; 0 when clean.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
REPORT_ID = "tgdmat-check-report"
#: virtual milliseconds Chromium lets a page run before it dumps the DOM (idle time is skipped)
BUDGET_MS = 30_000
#: wait after MathJax has finished, for viewers that draw late (virtual time: costs nothing)
SETTLE_MS = 2_000

# The probe runs first on the page: it records errors, then, after the load event, MathJax's
# first typesetting and the images, writes a JSON report into a <script> element of the page.
PROBE_JS = r"""
(function () {
  var errors = [];
  var origError = console.error;
  console.error = function () {
    errors.push("console.error: " + Array.prototype.map.call(arguments, String).join(" "));
    return origError.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) {
      errors.push("failed to load " + t.tagName.toLowerCase() + " " + (t.src || t.href || t.data || "?"));
    } else {
      errors.push("uncaught " + (e.message || String(e.error)) + (e.filename ? " (" + e.filename + ":" + e.lineno + ")" : ""));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    var r = e.reason;
    errors.push("unhandled promise rejection: " + (r && r.message ? r.message : String(r)));
  });
  // WebGL canvases keep their pixels, so that a blank 3-D viewer can be told from a drawn one
  var getContext = HTMLCanvasElement.prototype.getContext;
  HTMLCanvasElement.prototype.getContext = function (type, attrs) {
    if (/webgl/.test(String(type))) attrs = Object.assign({}, attrs || {}, {preserveDrawingBuffer: true});
    return getContext.call(this, type, attrs);
  };
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  function uniform(data, step) {  // every sampled RGBA pixel equal: nothing was drawn
    for (var i = step * 4; i < data.length; i += step * 4) {
      if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2] || data[i + 3] !== data[3]) return false;
    }
    return true;
  }
  function canvasInfo(c) {
    var r = c.getBoundingClientRect();
    var p = c.parentElement && c.parentElement.closest("[id]");
    var info = {id: c.id || "", in: p ? p.id : "", width: c.width, height: c.height,
                shown_width: r.width, shown_height: r.height, hidden: c.getClientRects().length === 0,
                blank: null};
    if (!c.width || !c.height) return info;
    var step = Math.max(1, Math.floor(c.width * c.height / 40000));
    try {
      // copy whatever the canvas shows (2-D, WebGL or an ImageBitmap, as 3Dmol 2 uses) onto a
      // scratch 2-D canvas and read that: the canvas itself is not touched
      var copy = document.createElement("canvas");
      copy.width = c.width; copy.height = c.height;
      var ctx = copy.getContext("2d");
      ctx.drawImage(c, 0, 0);
      info.blank = uniform(ctx.getImageData(0, 0, c.width, c.height).data, step);
    } catch (err) { info.error = String(err); }
    return info;
  }
  async function report() {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) {
      try { await mj.startup.promise; } catch (err) { errors.push("MathJax: " + err); }
    }
    var imgs = Array.prototype.slice.call(document.images);
    await Promise.all(imgs.map(function (im) {
      return im.complete ? null : new Promise(function (r) { im.addEventListener("load", r); im.addEventListener("error", r); setTimeout(r, 5000); });
    }));
    await sleep(SETTLE_MS);
    var out = {
      done: true,
      errors: errors,
      mathjax: (window.MathJax && window.MathJax.version) || null,
      canvases: Array.prototype.map.call(document.querySelectorAll("canvas"), canvasInfo),
      images: imgs.map(function (im) {
        return {src: im.getAttribute("src"), loaded: im.complete && im.naturalWidth > 0};
      })
    };
    var s = document.createElement("script");
    s.type = "application/json";
    s.id = "REPORT_ID";
    s.textContent = JSON.stringify(out).replace(/</g, "\\u003c");
    document.body.appendChild(s);
  }
  window.addEventListener("load", function () { report(); });
})();
""".replace("REPORT_ID", REPORT_ID).replace("SETTLE_MS", str(SETTLE_MS))

_ERROR_OUTPUT = ".traceback, .output_error, .output.error, [class*='highlight-ipythontb']"
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)")
_ERROR_LINE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception): ", re.M)
_CUT = re.compile(r"\w\.\.\.\s*$")  # pandas' truncation: the text runs on into "..." at the cell's end
_NAN = re.compile(r"(?<![\w<])(?:NaN|nan|NAN|<NA>|NaT)(?![\w>])")
_RAW_MATH = re.compile(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$")
#: JavaScript messages of the Jupyter Book 1 theme stack itself, on every page, harmless and not
#: ours to fix: sphinx-thebe's config script is put into the page twice (the second `const`
#: declaration fails; thebe is not used), and pydata-sphinx-theme reports an unset colour mode
#: on a reader's first visit before it falls back to "auto".
KNOWN_THEME_NOISE = [
    re.compile(r"^uncaught (Uncaught )?SyntaxError: Identifier 'THEBE_JS_URL' has already been declared"),
    re.compile(r"^console\.error: Got invalid theme mode: \. Resetting to auto\.$"),
]
#: elements a 3-D or plot viewer draws into; each must hold a canvas or an SVG after load
VIEWER_SELECTOR = '[id^="tgdmat-view-"], [id^="3dmolviewer"], .mol-container, .py3dmol, .plotly-graph-div, .nglview, [data-viewer]'
#: text a reader never sees as prose (code, scripts, typeset math)
_NOT_PROSE = ["script", "style", "pre", "code", "textarea", "noscript", "svg", "math", "mjx-container",
              "mjx-assistive-mml"]


def _soup(html: str):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, "html.parser")


def _short(text: str, n: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _row_label(cell) -> str:
    """The first cell of the table row that holds ``cell`` (the row's name), shortened."""
    row = cell.find_parent("tr")
    return _short(row.find(["th", "td"]).get_text(strip=True) if row is not None else "", 60)


def _is_remote(url: str) -> bool:
    return url.startswith("//") or urlsplit(url).scheme in ("http", "https")


def _local_file(src: str, page: Path) -> Path | None:
    """The file a relative ``src`` of ``page`` points at (``None`` for data:/remote URLs)."""
    parts = urlsplit(src)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if parts.scheme or src.startswith("//") or not parts.path:
        return None
    return (page.parent / unquote(parts.path)).resolve()


def _error_summary(text: str) -> str:
    """The exception line of a traceback (``KeyError: 'x'``), else its first line that says something."""
    found = list(_ERROR_LINE.finditer(text))
    if found:
        return _short(text[found[-1].start():].strip().splitlines()[0])
    lines = [ln for ln in text.splitlines() if ln.strip() and set(ln.strip()) != {"-"}]
    return _short(lines[0] if lines else text)


def report_of(soup) -> dict | None:
    """The probe's report embedded in a dumped DOM, or ``None`` when the probe never finished."""
    el = soup.find("script", id=REPORT_ID)
    if el is None:
        return None
    try:
        return json.loads(el.string or "")
    except json.JSONDecodeError:
        return None


def analyse_page(dom: str, page: Path | None = None, browser: bool = True) -> list[str]:
    """Problems a reader would see on one page, from its DOM after load (no browser needed).

    Args:
        dom: the page's HTML as the browser left it (with the probe's report), or any HTML.
        page: where the page lies on disk (relative image paths are checked against it).
        browser: whether ``dom`` came from the browser; then a missing report is a problem.

    Returns:
        one short sentence per problem, in page order of the checks (empty: the page is clean).
    """
    soup = _soup(dom)
    problems: list[str] = []
    report = report_of(soup)
    if browser and report is None:
        problems.append(f"the page did not finish loading in the browser (no report within {BUDGET_MS} ms)")
    report = report or {}

    # error outputs of executed cells
    error_outputs = soup.select(_ERROR_OUTPUT)
    for el in error_outputs:
        problems.append(f"error output: {_error_summary(el.get_text())}")
    for out in soup.select(".cell_output, .output_area, .output"):
        if out.find_parent(class_=["cell_output", "output_area", "output"]) is not None:
            continue  # counted with its outer output
        if out in error_outputs or out.select_one(_ERROR_OUTPUT) is not None:
            continue  # already reported above
        text = out.get_text("\n")
        if _TRACEBACK.search(text) or _ERROR_LINE.search(text):
            m = _TRACEBACK.search(text) or _ERROR_LINE.search(text)
            line = text[m.start():].strip().splitlines()[0]
            msg = f"error output: {_short(line)}"
            if msg not in problems:
                problems.append(msg)

    # JavaScript errors and failed loads seen by the probe
    for err in report.get("errors", []):
        if any(p.search(err) for p in KNOWN_THEME_NOISE):
            continue
        problems.append(f"JavaScript: {_short(err, 200)}")

    # viewers and canvases
    for v in soup.select(VIEWER_SELECTOR):
        if v.find(["canvas", "svg"]) is None:
            name = v.get("id") or ".".join(v.get("class", [])) or v.name
            problems.append(f"viewer {name!r} has nothing drawn in it (no canvas or svg after load)")
    for c in report.get("canvases", []):
        name = f"canvas {c.get('id') or '(no id)'}" + (f" in #{c['in']}" if c.get("in") else "")
        if not c.get("width") or not c.get("height"):
            problems.append(f"{name} has zero size ({c.get('width')}×{c.get('height')} pixels)")
        elif not c.get("hidden") and (not c.get("shown_width") or not c.get("shown_height")):
            problems.append(f"{name} is shown at zero size ({c.get('shown_width')}×{c.get('shown_height')})")
        elif c.get("blank"):
            problems.append(f"{name} is blank (one colour) after load")

    # NaN in tables
    for table in soup.find_all("table"):
        bad = [cell for cell in table.find_all(["td", "th"]) if _NAN.search(cell.get_text())]
        if bad:
            problems.append(f"NaN in a table: {len(bad)} cell(s), first in row {_row_label(bad[0])!r}")
        # pandas cuts a cell longer than display.max_colwidth (50 characters) to "…..." and hides the rest
        cut = [cell for cell in table.find_all("td") if _CUT.search(cell.get_text())]
        if cut:
            problems.append(f"table cell cut short by pandas ('...'; set display.max_colwidth): {len(cut)} cell(s), "
                            f"first in row {_row_label(cut[0])!r}")

    # figures
    seen = set()
    for img in soup.find_all("img"):
        src = img.get("src") or ""
        f = _local_file(src, page) if page is not None else None
        if not src:
            problems.append("missing figure: <img> without src")
        elif f is not None and not f.is_file():
            problems.append(f"missing figure: {src} (no such file)")
            seen.add(src)
    for im in report.get("images", []):
        if not im.get("loaded") and im.get("src") not in seen:
            problems.append(f"missing figure: {im.get('src')} did not load")

    # math: bundled MathJax, typeset, no raw LaTeX left
    for tag in soup.find_all(["script", "link"]):
        url = tag.get("src") or tag.get("href") or ""
        if "mathjax" in url.lower() and _is_remote(url):
            problems.append(f"MathJax from a CDN: {url} (an offline copy shows raw LaTeX)")
    math = soup.select(".math")
    if browser and math and not report.get("mathjax"):
        problems.append(f"{len(math)} math element(s) but MathJax did not load")
    for el in soup.find_all(_NOT_PROSE):
        el.decompose()
    for el in soup.select(".highlight, .MathJax, .MathJax_Preview"):
        el.decompose()
    body = soup.body or soup
    raw = [m.group(0) for m in _RAW_MATH.finditer(body.get_text(" "))]
    if raw:
        problems.append(f"raw LaTeX left in the text ({len(raw)}×, e.g. {_short(raw[0], 40)!r}): math not rendered")
    return problems


def redirect_target(html: str) -> str | None:
    """The URL of a ``<meta http-equiv="refresh">`` redirect page (Jupyter Book's index.html)."""
    m = re.search(r'<meta[^>]+http-equiv="refresh"[^>]+content="[^"]*url=([^"]+)"', html, re.I)
    return m.group(1).strip() if m else None


def instrument(html: str, page: Path) -> str:
    """``html`` with a ``<base>`` pointing at ``page`` and the probe as the first script of <head>."""
    head = f'<base href="{page.resolve().as_uri()}"><script>{PROBE_JS}</script>'
    m = re.search(r"<head[^>]*>", html, re.I)
    if m is None:
        return head + html
    return html[: m.end()] + head + html[m.end():]


def find_browser(name: str | None = None) -> str:
    for cand in [name, os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "chrome"]:
        if cand and shutil.which(cand):
            return shutil.which(cand)
    raise SystemExit("check_book: no Chromium found (Debian: apt-get install chromium; or pass --browser)")


def load_in_browser(page: Path, browser: str, workdir: Path, budget_ms: int = BUDGET_MS) -> str:
    """The DOM of ``page`` after headless Chromium has loaded it with the probe (network off)."""
    copy = workdir / "page.html"
    copy.write_text(instrument(page.read_text(encoding="utf-8"), page), encoding="utf-8")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
           f"--user-data-dir={workdir / 'profile'}",
           "--use-angle=swiftshader", "--enable-unsafe-swiftshader",  # WebGL without a GPU
           "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any CDN load fails and is reported
           "--window-size=1280,2000", f"--virtual-time-budget={budget_ms}", "--dump-dom", copy.as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if res.returncode != 0 and not res.stdout:
        raise RuntimeError(f"{browser} failed on {page}: {res.stderr.strip().splitlines()[-1:]}")
    return res.stdout


def pages_of(html_root: Path) -> list[Path]:
    """Every HTML page of the build (not the theme's and Sphinx's own folders ``_static`` etc.)."""
    return sorted(p for p in html_root.rglob("*.html")
                  if not any(part.startswith("_") for part in p.relative_to(html_root).parts[:-1]))


def check(html_root: Path, browser: str) -> tuple[list[str], int]:
    problems, pages = [], pages_of(html_root)
    with tempfile.TemporaryDirectory(prefix="tgdmat-check-") as tmp:
        for page in pages:
            name = page.relative_to(html_root).as_posix()
            html = page.read_text(encoding="utf-8")
            target = redirect_target(html)
            if target is not None:
                f = _local_file(target, page)
                if f is not None and not f.is_file():
                    problems.append(f"{name}: redirects to {target}, which does not exist")
                continue
            try:
                dom = load_in_browser(page, browser, Path(tmp))
            except (RuntimeError, subprocess.TimeoutExpired) as err:
                problems.append(f"{name}: could not be loaded: {err}")
                continue
            problems += [f"{name}: {p}" for p in analyse_page(dom, page)]
    return problems, len(pages)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("html_root", nargs="?", default=str(ROOT / "_build" / "html"))
    ap.add_argument("--browser", help="Chromium executable (default: $CHROMIUM, chromium, chromium-browser, google-chrome)")
    args = ap.parse_args(argv)
    root = Path(args.html_root)
    if not root.is_dir():
        print(f"check_book: {root} does not exist: build the book first (bash scripts/book.sh)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    problems, n = check(root, find_browser(args.browser))
    for p in problems:
        print(p)
    print(f"check_book: {n} pages, {len(problems)} problem(s), {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
