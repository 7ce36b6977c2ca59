"""The HTML view of a batch for the course staff: `index.html` plus one student page per submission.

    DIR/html/index.html      the gradebook as a sortable table (click a column header), the score
                             histogram (inline SVG), per-check pass rates, a link to each page
    DIR/html/<name>.html     `autograder.report.html`'s page for DIR/<name>.json

Read from the same rows and summary as gradebook.csv and summary.json (`autograder.report.gradebook`),
so the pages never disagree with them. Each page is self-contained; the index's only script is the
grader's own sorter (no student text in it: it reads the cells' data-sort attributes), allowed by hash in
the page's Content-Security-Policy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Sequence
from urllib.parse import quote

from autograder.report import html as student_page
from autograder.report.document import section_not_graded, write_atomically
from autograder.report.gradebook import Row
from autograder.report.html import bar, esc, num, status_class

SORTER = """
document.querySelectorAll('table.sortable th').forEach(function (th) {
  th.addEventListener('click', function () {
    var table = th.closest('table'), body = table.tBodies[0], i = th.cellIndex;
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[i].dataset.sort, y = b.cells[i].dataset.sort, nx = parseFloat(x), ny = parseFloat(y);
      var c = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""

INDEX_CSS = """
table.sortable th { cursor: pointer; user-select: none; }
.wide { overflow-x: auto; }
.wide th, .wide td { padding: 6px 7px; }
.wide th { font-size: 13px; }
table.sortable th::after { content: " \\2195"; color: #8c959f; font-weight: 400; }
table.sortable th[aria-sort=ascending]::after { content: " \\2191"; color: #1f2328; }
table.sortable th[aria-sort=descending]::after { content: " \\2193"; color: #1f2328; }
.stats { display: flex; gap: 28px; flex-wrap: wrap; }
.stats div { font-size: 13px; color: #57606a; }
.stats b { display: block; font-size: 22px; color: #1f2328; }
svg.hist text { font: 12px system-ui, sans-serif; fill: #57606a; }
"""


def page_name(name: str) -> str:
    """The file name of a submission's page (report names never contain '/')."""
    return f"{name}.html"


def write_site(rows: Sequence[Row], summary: Dict[str, Any], folder: Path) -> Path:
    """Write one page per row and the index into `folder`; returns the index's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for tmp in folder.glob(".*.html.*"):  # a killed run's half-written page (see write_atomically)
        tmp.unlink(missing_ok=True)
    for row in rows:
        student_page.write(row.document, folder / page_name(row.name))
    index = folder / "index.html"
    write_atomically(index, render_index(rows, summary).encode("utf-8"))
    return index


def render_index(rows: Sequence[Row], summary: Dict[str, Any]) -> str:
    """The batch's index page."""
    body = "\n".join([_header(summary), _gradebook(rows), _histogram(summary), _pass_rates(summary)])
    return student_page.page(f"batch: {summary['count']} submissions", body, css=INDEX_CSS, script=SORTER)


def _header(summary: Dict[str, Any]) -> str:
    scores, outcome = summary["scores"], summary["outcome"]
    top = summary["max_score"]
    stats = [("submissions", str(summary["count"])),
             ("mean", f"{round(scores['mean'], 1):g} / {top:g}" if scores["mean"] is not None else "n/a"),
             ("median", f"{scores['median']:g}" if scores["median"] is not None else "n/a"),
             ("full marks", str(scores["full_marks"])),
             ("not gradable", str(summary["status"].get("not_gradable", 0))),
             ("timed out / crashed", f"{outcome.get('timeout', 0)} / {outcome.get('crashed', 0)}")]
    cells = "".join(f"<div><b>{esc(value)}</b>{esc(label)}</div>" for label, value in stats)
    return ('<header class="top"><div><h1>Batch gradebook</h1><div class="sub">click a column header to sort; '
            f'click a submission for its page</div></div></header><section class="card"><div class="stats">{cells}'
            '</div></section>')


def _gradebook(rows: Sequence[Row]) -> str:
    sections = list(dict.fromkeys(name for r in rows for name in r.document["sections"]))  # in report order
    head = "".join(f'<th class="num">{esc(s)}</th>' for s in sections)
    lines = []
    for r in rows:
        doc = r.document
        score, top = float(doc["score"]), float(doc["max_score"])
        kind = status_class(score, top)
        state = r.outcome if r.outcome != "graded" else doc["status"]  # timeout, crashed; else graded, not_gradable
        link = esc(quote(page_name(r.name), safe=""))
        cells = [f'<td data-sort="{esc(r.name)}"><a href="{link}">{esc(r.name)}</a></td>',
                 f'<td class="num" data-sort="{score:g}"><span class="pill {kind}">{num(score)} / {num(top)}</span>'
                 '</td>',
                 f'<td data-sort="{esc(state)}">{esc(state)}</td>']
        for s in sections:
            sec = doc["sections"].get(s)
            if sec is None:
                cells.append('<td class="num" data-sort="-1"></td>')
            elif section_not_graded(sec):  # as the gradebook says it: no score either way
                cells.append('<td class="num" data-sort="-1">not graded</td>')
            else:
                cells.append(f'<td class="num" data-sort="{float(sec["score"]):g}">{num(sec["score"])}</td>')
        seconds = float(doc["timing"]["duration_s"])
        cells.append(f'<td class="num" data-sort="{seconds:g}">{seconds:.1f} s</td>')
        lines.append(f'<tr class="{kind}">{"".join(cells)}</tr>')
    return ('<section class="card" id="gradebook"><h2>Gradebook</h2><div class="wide"><table class="sortable"><thead>'
            f'<tr><th>submission</th><th class="num">score</th><th>status</th>{head}'
            f'<th class="num">time</th></tr></thead><tbody>{"".join(lines)}</tbody></table></div></section>')


def _histogram(summary: Dict[str, Any]) -> str:
    """summary's score histogram as an inline SVG bar chart (bins left to right, counts on the bars)."""
    edges: List[float] = summary["scores"]["histogram"]["edges"]
    counts: List[int] = summary["scores"]["histogram"]["counts"]
    width, height, left, bottom = 640, 220, 36, 28
    plot_w, plot_h = width - left - 24, height - bottom - 20
    top = max(counts, default=0) or 1
    step = plot_w / max(len(counts), 1)
    parts = [f'<line x1="{left}" y1="{20 + plot_h}" x2="{left + plot_w}" y2="{20 + plot_h}" stroke="#8c959f"/>']
    for i, count in enumerate(counts):
        h = plot_h * count / top
        x, y = left + i * step, 20 + plot_h - h
        parts.append(f'<rect x="{x + 2:.1f}" y="{y:.1f}" width="{step - 4:.1f}" height="{h:.1f}" fill="#0969da">'
                     f'<title>{edges[i]:g} to {edges[i + 1]:g}: {count}</title></rect>')
        if count:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">{count}</text>')
    for i, edge in enumerate(edges):
        parts.append(f'<text x="{left + i * step:.1f}" y="{height - 8}" text-anchor="middle">{edge:g}</text>')
    svg = (f'<svg class="hist" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
           f'aria-label="score histogram">{"".join(parts)}</svg>')
    return f'<section class="card" id="histogram"><h2>Scores</h2>{svg}<div class="note">score (points)</div></section>'


def _pass_rates(summary: Dict[str, Any]) -> str:
    rows = []
    for cid, rate in summary["pass_rates"].items():
        kind = status_class(rate, 1.0)
        rows.append(f'<tr class="{kind}"><td data-sort="{esc(cid)}"><code>{esc(cid)}</code></td>'
                    f'<td class="num" data-sort="{rate:g}">{rate * 100:.0f}%</td>'
                    f'<td data-sort="{rate:g}">{bar(rate)}</td></tr>')
    return ('<section class="card" id="pass-rates"><h2>Pass rate per check</h2><table class="sortable"><thead><tr>'
            f'<th>check</th><th class="num">passed</th><th>of the batch</th></tr></thead><tbody>{"".join(rows)}'
            '</tbody></table></section>')
