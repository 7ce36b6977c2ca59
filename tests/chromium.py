"""A real headless Chromium for the HTML tests (Debian's `chromium` package): screenshots and rendered DOMs.

Tests that need it use `needs_chromium` (a skip with the reason when no browser is installed). Each run
gets its own throwaway profile and no network features. `AUTOGRADER_SCREENSHOTS=DIR` keeps a copy of
every screenshot in DIR for a person to look at.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import pytest

CHROMIUM: Optional[str] = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                    "(Debian: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
_CSP = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')

# Runs after the page has loaded; writes what it saw into the DOM, which --dump-dom then shows:
# the side-effect flag hostile text would set, each image's decoded width, and (optionally) the order of
# the first column after clicking a header.
PROBE = """
window.addEventListener('load', function () {
  var p = document.createElement('div'); p.id = 'probe';
  var click = document.querySelector('[data-probe-click]');
  if (click) { click.click(); }
  var first = document.querySelector('table.sortable tbody');
  p.setAttribute('data-pwned', String(window.__pwned));
  var map = function (list, f) { return Array.prototype.map.call(list, f); };
  p.setAttribute('data-widths', map(document.images, function (i) { return i.naturalWidth; }).join(','));
  p.setAttribute('data-order', first ? map(first.rows, function (r) { return r.cells[0].textContent; }).join('|') : '');
  document.body.appendChild(p);
});
"""


def _run(args: List[str], timeout: float = 90) -> str:
    with tempfile.TemporaryDirectory(prefix="autograder-chromium-") as profile:
        done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)
    return done.stdout


def screenshot(page: Path, png: Path, height: int = 2000) -> Path:
    """A 1200 x height screenshot of the page; also copied to $AUTOGRADER_SCREENSHOTS when set."""
    _run([f"--screenshot={png}", f"--window-size=1200,{height}", page.absolute().as_uri()])
    assert png.is_file() and png.stat().st_size > 0, f"chromium wrote no screenshot of {page}"
    keep = os.environ.get("AUTOGRADER_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, Path(keep) / png.name)
    return png


def probed(page: Path, out: Path, keep_csp: bool, click_header: Optional[str] = None) -> Dict[str, str]:
    """Open a copy of `page` with PROBE added and return what the probe saw (pwned, widths, order).

    keep_csp=False removes the page's Content-Security-Policy, so that escaping alone has to keep hostile
    text inert; keep_csp=True keeps it and allows the probe by its hash (the page's own script must still
    run under it). click_header: the text of a table header the probe clicks first.
    """
    text = page.read_text(encoding="utf-8")
    probe_hash = f"'sha256-{base64.b64encode(hashlib.sha256(PROBE.encode()).digest()).decode()}'"
    if keep_csp:
        policy = _CSP.search(text).group(1)
        allowed = re.sub(r"script-src [^;]*", lambda m: m.group(0).replace("'none'", "") + " " + probe_hash, policy)
        text = _CSP.sub(lambda m: f'<meta http-equiv="Content-Security-Policy" content="{allowed}">', text)
    else:
        text = _CSP.sub("", text)
    if click_header:
        text = text.replace(f"<th>{click_header}</th>", f"<th data-probe-click>{click_header}</th>", 1)
        text = text.replace(f'<th class="num">{click_header}</th>',
                            f'<th class="num" data-probe-click>{click_header}</th>', 1)
    text = text.replace("</body>", f"<script>{PROBE}</script></body>")
    out.write_text(text, encoding="utf-8")
    dom = _run(["--dump-dom", "--virtual-time-budget=5000", out.absolute().as_uri()])
    found = re.search(r'<div id="probe" data-pwned="([^"]*)" data-widths="([^"]*)" data-order="([^"]*)">', dom)
    assert found, f"the probe did not run in {out}: {dom[-500:]}"
    return {"pwned": found.group(1), "widths": found.group(2), "order": found.group(3), "dom": dom}
