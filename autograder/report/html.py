"""The HTML view of a report: one self-contained page a student opens in a browser.

Points per section, each lost check's message and hint with the student's own lines where it arose
(`autograder.report.source`), the model comparison (the continuation under both attentions, next-token
agreement, the heatmaps as data: URIs), what the code printed, and every check with a red/green status.

Everything on the page is read from the JSON report (plus, at render time, the graded source file and the
heatmap PNGs the report lists). No external CSS, JS, font or image: one file that opens anywhere.

Safety: every string from the report is escaped for text and attribute context (`esc`); the page carries
no script at all, and a Content-Security-Policy (`script-src 'none'`, images from data: only) says so to
the browser as a second line of defence.
"""
from __future__ import annotations

import base64
import hashlib
import itertools
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

from autograder.report import source
from autograder.runtime.notebook import ModuleSource
from autograder.report.document import failing_groups, section_not_graded, write_atomically
from autograder.report.neutralise import html as esc  # the HTML reader's neutraliser
from autograder.report.terminal import OUTPUT_LINES

MAX_HEATMAPS = 16                  # pictures embedded per page
HEATMAPS_OPEN = 2                  # shown unfolded; the rest behind a <details>
MAX_PICTURE_BYTES = 1_000_000      # per picture; larger ones are named, not embedded
MAX_OUTPUT_CHARS = 4000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

CSS = """
:root { --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9; --part: #9a6700; --part-bg: #fff8c5;
  --line: #d0d7de; --muted: #57606a; --code-bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: #1f2328;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 48px; }
header.top { display: flex; justify-content: space-between; align-items: center; gap: 16px; flex-wrap: wrap;
  background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 18px 22px; }
header.top h1 { margin: 0; font-size: 22px; word-break: break-all; }
header.top .sub { color: var(--muted); font-size: 13px; }
.score { font-size: 34px; font-weight: 700; white-space: nowrap; }
.score small { font-size: 18px; color: var(--muted); font-weight: 500; }
section.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 16px 22px;
  margin-top: 18px; }
section.card h2 { margin: 0 0 12px; font-size: 18px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--code-bg); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.pill { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600;
  white-space: nowrap; }
.pill.ok { color: var(--ok); background: var(--ok-bg); }
.pill.bad { color: var(--bad); background: var(--bad-bg); }
.pill.part { color: var(--part); background: var(--part-bg); }
.bar { height: 10px; min-width: 120px; background: var(--bad-bg); border-radius: 5px; overflow: hidden; }
.bar > span { display: block; height: 100%; background: var(--ok); }
.cause { margin: 14px 0; }
.cause .fix { margin: 8px 0 8px 0; }
.fix { border: 1px solid var(--line); border-left: 5px solid var(--bad); border-radius: 8px; padding: 10px 14px;
  margin: 12px 0; }
.fix.error { border-left-color: #8250df; }
.fix .ids { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
.fix .lost { float: right; color: var(--bad); font-weight: 600; }
.msg { white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
.hint { background: #ddf4ff; border-radius: 6px; padding: 6px 10px; margin: 6px 0; white-space: pre-wrap;
  word-break: break-word; }
.mistake { color: var(--muted); font-size: 13px; }
pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
pre.out { background: var(--code-bg); border-radius: 6px; padding: 10px; white-space: pre-wrap;
  word-break: break-word; max-height: 420px; overflow: auto; }
table.src { width: auto; min-width: 60%; background: var(--code-bg); border-radius: 6px; margin: 8px 0; }
table.src td { border: 0; padding: 0 10px; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 13px; white-space: pre; }
table.src td.ln { color: var(--muted); text-align: right; user-select: none; }
table.src tr.mark td { background: var(--bad-bg); }
table.src tr.mark td.ln { color: var(--bad); font-weight: 700; }
.note { color: var(--muted); font-size: 13px; }
table.figs td:first-child { width: 300px; }
.alert { background: var(--bad-bg); border: 1px solid #ff8182; border-radius: 8px; padding: 10px 14px; }
.cont { display: grid; grid-template-columns: 210px 1fr; gap: 6px 14px; align-items: baseline; }
.cont .txt { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--code-bg);
  padding: 4px 8px; border-radius: 6px; white-space: pre-wrap; word-break: break-word; }
.cont .txt b { color: #0550ae; }
.heatmaps { display: grid; grid-template-columns: 1fr; gap: 14px; }
.heatmaps figure { margin: 0; }
.heatmaps img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
details summary { cursor: pointer; color: #0969da; margin: 10px 0; }
.heatmaps figcaption { color: var(--muted); font-size: 13px; }
footer { color: var(--muted); font-size: 12px; margin-top: 18px; word-break: break-all; }
a { color: #0969da; }
"""


def num(value: Any) -> str:
    """A score or figure as the terminal shows it (12, 2.5)."""
    return f"{float(value):g}"


def status_class(score: float, max_score: float) -> str:
    """ok (full marks), bad (nothing) or part."""
    return "ok" if score >= max_score else ("bad" if score <= 0 else "part")


def bar(fraction: float) -> str:
    width = max(0.0, min(1.0, float(fraction))) * 100
    return f'<div class="bar"><span style="width:{width:.1f}%"></span></div>'


def page(title: str, body: str, css: str = "", script: str = "") -> str:
    """A whole document around `body` (already escaped HTML), with CSS and `css` in its head. `script`, when
    given, is the grader's own inline JavaScript (never student text): the CSP allows exactly it, by hash."""
    allowed = f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'" if script else "'none'"
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src {allowed}; "
           "base-uri 'none'; form-action 'none'")
    tail = f"<script>{script}</script>" if script else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}{css}</style></head>\n"
            f"<body><main>\n{body}\n</main>{tail}</body></html>\n")


def render(document: Dict[str, Any]) -> str:
    """The student's page for a report (as `autograder.report.document` builds it)."""
    sub = document["submission"]
    module = source.graded_source(sub)
    parts = [_header(document), _sections(document)]
    if sub["load_error"]:
        parts.append(_load_error(sub["load_error"], module, len(document["checks"])))
    else:
        parts.append(_what_to_fix(document, module))
    model = document.get("metrics", {}).get("model")
    heatmaps = [a for a in document.get("artifacts", []) if a.get("kind") == "heatmap"]
    if model or heatmaps:
        parts.append(_model(model or {}, heatmaps))
    parts.append(_output(sub["output"]))
    parts.append(_all_checks(document))
    parts.append(_footer(document))
    return page(f"{sub['name']}: {num(document['score'])}/{num(document['max_score'])}", "\n".join(parts))


def write(document: Dict[str, Any], path: Path) -> None:
    """Render the page and write it atomically (folders made as needed)."""
    write_atomically(Path(path), render(document).encode("utf-8"))


def _header(document: Dict[str, Any]) -> str:
    sub = document["submission"]
    score, top = document["score"], document["max_score"]
    kind = status_class(score, top)
    verdict = {"ok": "full marks", "part": "points lost", "bad": "no points"}[kind]
    if document["status"] == "not_gradable":
        verdict = "could not be graded"
    elif document["status"] == "incomplete":
        verdict = "incomplete: some checks could not run here"
    graded = document["timing"]["started_at"]
    return (f'<header class="top"><div><h1>{esc(sub["name"])}</h1>'
            f'<div class="sub">assignment {esc(document["assignment"])} · graded {esc(graded)}'
            f' · <span class="pill {kind}">{esc(verdict)}</span></div></div>'
            f'<div class="score">{num(score)} <small>/ {num(top)} points</small></div></header>')


def _sections(document: Dict[str, Any]) -> str:
    rows = []
    for name, sec in document["sections"].items():
        if section_not_graded(sec):  # this machine could not run it: no points either way
            rows.append(f'<tr><td>{esc(name)}</td><td class="num">-</td><td class="num">- / {int(sec["total"])}</td>'
                        '<td></td><td><span class="pill">not graded</span></td></tr>')
            continue
        kind = status_class(sec["score"], sec["max_score"])
        fraction = sec["score"] / sec["max_score"] if sec["max_score"] else 1.0
        rows.append(f'<tr class="{kind}"><td>{esc(name)}</td>'
                    f'<td class="num">{num(sec["score"])} / {num(sec["max_score"])}</td>'
                    f'<td class="num">{int(sec["passed"])} / {int(sec["total"])}</td><td>{bar(fraction)}</td>'
                    f'<td><span class="pill {kind}">{"all passed" if kind == "ok" else "points lost"}</span></td></tr>')
    for missing in document.get("not_graded", []):
        counted = "kept in the maximum: this grade is incomplete" if missing["counted"] else "not counted"
        rows.append(f'<tr><td colspan="5" class="note">Not graded: {esc(missing["section"])} '
                    f'({int(missing["checks"])} checks, {counted}): {esc(missing["reason"])}</td></tr>')
    total = (f'<tr><th>total</th><th class="num">{num(document["score"])} / {num(document["max_score"])}</th>'
             f'<th class="num"></th><th></th><th></th></tr>')
    return ('<section class="card" id="sections"><h2>Points per section</h2><table><thead><tr><th>section</th>'
            '<th class="num">points</th><th class="num">checks passed</th><th>progress</th><th>status</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody><tfoot>{total}</tfoot></table></section>')


def _load_error(message: str, module: Optional[ModuleSource], count: int) -> str:
    where = source.excerpt(module, message) if module else None
    return ('<section class="card" id="fix"><h2>Your file could not be graded</h2>'
            f'<div class="alert"><div class="msg">{esc(message)}</div></div>{_source(where)}'
            f'<p class="note">All {count} checks score 0 until the file loads.</p></section>')


Shown = Set[Tuple[int, int, int, Optional[int]]]  # (cell, first, count, mark) of each excerpt on the page


def _what_to_fix(document: Dict[str, Any], module: Optional[ModuleSource]) -> str:
    """One card per group of failing checks (same status, message and hint); consecutive groups with the
    same hint (one cause seen by several checks) are boxed together under that hint, said once."""
    groups = failing_groups(document["checks"])
    if not groups:
        return '<section class="card" id="fix"><h2>What to fix</h2><p>Nothing: every check passed.</p></section>'
    blocks: List[str] = []
    shown: Shown = set()  # excerpts already on the page: said once, then referred to
    for hint, run in itertools.groupby(groups, key=lambda group: group[0].get("hint")):
        cards = [_card(group, module, shown) for group in run]
        if hint and len(cards) > 1:
            blocks.append(f'<div class="cause"><div class="hint"><b>Hint for the {len(cards)} failures below:</b> '
                          f'{esc(hint)}</div>{"".join(cards)}</div>')
        else:
            blocks.append((f'<div class="cause"><div class="hint"><b>Hint:</b> {esc(hint)}</div>' if hint
                           else '<div class="cause">') + f'{"".join(cards)}</div>')
    note = "" if module else ('<p class="note">Your source lines are not shown: the graded file is not at its '
                              'path any more, has changed since grading, or could not be read.</p>')
    return f'<section class="card" id="fix"><h2>What to fix</h2>{"".join(blocks)}{note}</section>'


def _card(group: List[Dict[str, Any]], module: Optional[ModuleSource], shown: Shown) -> str:
    """One failing group: its checks, the points it lost, its message, the mistake it matched, and the
    source it points at (or, when an earlier card showed the same lines, a reference to them)."""
    first = group[0]
    lost = sum(c["max_score"] for c in group)
    ids = ", ".join(c["id"] for c in group)
    mistake = (f'<div class="mistake">recognised mistake: <code>{esc(first["mistake"])}</code></div>'
               if first.get("mistake") else "")
    hidden = any(c.get("hidden") for c in group)
    where = source.excerpt(module, first["message"]) if module and not hidden else None
    if where is None:
        code = ""
    elif (where.cell, where.first, len(where.lines), where.mark) in shown:
        last = where.first + len(where.lines) - 1
        code = f'<div class="note">your code: {_in_cell(where)}lines {where.first}–{last}, shown above</div>'
    else:
        shown.add((where.cell, where.first, len(where.lines), where.mark))
        code = _source(where)
    return (f'<div class="fix {esc(first["status"])}"><span class="lost">−{num(lost)} points</span>'
            f'<span class="pill bad">{esc(first["status"])}</span> <span class="ids">{esc(ids)}</span>'
            f'<div class="msg">{esc(first["message"])}</div>{mistake}{code}</div>')


def _source(where: Optional[source.Excerpt]) -> str:
    if where is None:
        return ""
    rows = "".join(f'<tr{" class=mark" if n == where.mark else ""}><td class="ln">{n}</td><td>{esc(text)}</td></tr>'
                   for n, text in where.numbered())
    more = f'<div class="note">… {where.more} more lines of this function</div>' if where.more else ""
    label = f"your code, code cell {where.cell} (its lines):" if where.cell else "your code:"
    return f'<div class="note">{label}</div><table class="src">{rows}</table>{more}'


def _in_cell(where: source.Excerpt) -> str:
    """"code cell 3, " for an excerpt of a notebook (its lines are numbered within the cell), else ""."""
    return f"code cell {where.cell}, " if where.cell else ""


def _all_checks(document: Dict[str, Any]) -> str:
    rows = []
    for c in document["checks"]:
        ok = c["status"] == "passed"
        label = "passed" if ok else c["status"].replace("_", " ")
        pill = "ok" if ok else "" if c["status"] == "not_graded" else "bad"
        rows.append(f'<tr><td>{esc(c["section"])}</td><td><code>{esc(c["id"])}</code></td>'
                    f'<td><span class="pill {pill}">{esc(label)}</span></td>'
                    f'<td class="num">{num(c["score"])} / {num(c["max_score"])}</td>'
                    f'<td class="num">{float(c["duration_s"]):.2f} s</td></tr>')
    return ('<section class="card" id="checks"><h2>Every check</h2><table><thead><tr><th>section</th><th>check</th>'
            '<th>status</th><th class="num">points</th><th class="num">time</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></section>')


def _model(model: Dict[str, Any], heatmaps: List[Dict[str, Any]]) -> str:
    parts = ['<section class="card" id="model"><h2>Your attention inside the model</h2>']
    if model:
        parts.append(f'<p class="note">{esc(model.get("model_name", "the model"))}, '
                     f'block {esc(model.get("layer_idx", 0))}: '
                     f'your function replaced the attention of its {esc(model.get("heads", "?"))} heads.</p>')
        parts.append(_continuation(model))
        parts.append(_figures(model))
    if model.get("heatmaps_error"):
        parts.append(f'<p class="note">The heatmaps could not be drawn: {esc(model["heatmaps_error"])}</p>')
    parts.append(_heatmaps(heatmaps))
    parts.append("</section>")
    return "".join(parts)


def _continuation(model: Dict[str, Any]) -> str:
    cont = model.get("continuation")
    prompts = model.get("prompts") or [""]
    if not cont:
        return ""
    same = bool(cont.get("match"))
    verdict = ('<span class="pill ok">same continuation</span>' if same
               else '<span class="pill bad">different continuation</span>')
    return (f'<h3>Greedy continuation of the prompt {verdict}</h3><div class="cont">'
            f'<div>the model as released</div>'
            f'<div class="txt">{esc(prompts[0])}<b>{esc(cont.get("reference", ""))}</b></div>'
            f'<div>with your attention</div>'
            f'<div class="txt">{esc(prompts[0])}<b>{esc(cont.get("student", ""))}</b></div>'
            '</div>')


def _figures(model: Dict[str, Any]) -> str:
    """Agreement figures: per-measure mean and worst of the attention rows, then next-token figures."""
    rows = []
    for measure, values in (model.get("attention") or {}).items():
        if isinstance(values, dict):
            shown = ", ".join(f"{esc(k)} {_fig(v)}" for k, v in values.items() if k not in ("per_head", "per_row"))
            rows.append((f"attention weights: {measure}", shown))
    causal = model.get("next_token") is not None  # an encoder has no logits; a causal LM's None was NaN or inf
    for key, label, kept in (("block_output_max_abs_diff", "block output, largest difference", True),
                             ("logits_max_abs_diff", "logits, largest difference", causal)):
        if kept and key in model:
            rows.append((label, _fig(model[key], missing="not a number: NaN or inf appeared")))
    nxt = model.get("next_token") or {}
    for key, label in (("kl", "next token: KL divergence"), ("top1_agreement", "next token: top-1 agreement"),
                       ("top5_agreement", "next token: top-5 agreement")):
        if nxt.get(key):
            rows.append((label, ", ".join(_fig(v) for v in nxt[key])))
    for key, label in (("reference_top5", "top 5 next tokens, released"), ("student_top5", "top 5 next tokens, yours")):
        if nxt.get(key):
            rows.append((label, " · ".join(f"<code>{esc(repr(t))}</code>" for t in nxt[key][0])))
    body = "".join(f"<tr><td>{esc(label)}</td><td>{value}</td></tr>" for label, value in rows)
    return f'<h3>How close your model is</h3><table class="figs"><tbody>{body}</tbody></table>' if rows else ""


def _fig(value: Any, missing: str = "n/a") -> str:
    """An escaped figure: numbers to 4 significant digits, None as `missing` (the report writes NaN and inf
    as None)."""
    if value is None:
        return esc(missing)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{float(value):.4g}"
    return esc(value)


def _heatmaps(artifacts: List[Dict[str, Any]]) -> str:
    """The heatmap PNGs embedded as data: URIs: the first HEATMAPS_OPEN shown, the others one click away."""
    if not artifacts:
        return ""
    figures, missing = [], []
    for art in artifacts[:MAX_HEATMAPS]:
        uri = png_data_uri(Path(art["path"]))
        if uri is None:
            missing.append(art["path"])
            continue
        caption = f'{esc(Path(art["path"]).stem)}: {esc(art.get("description", ""))}'
        figures.append(f'<figure><img src="{uri}" alt="{caption}"><figcaption>{caption}</figcaption></figure>')
    shown, folded = figures[:HEATMAPS_OPEN], figures[HEATMAPS_OPEN:]
    more = (f'<details><summary>{len(folded)} more heatmaps</summary><div class="heatmaps">{"".join(folded)}</div>'
            '</details>' if folded else "")
    notes = _notes(
        [f"{len(artifacts) - MAX_HEATMAPS} more heatmaps are in the report's folder"]
        if len(artifacts) > MAX_HEATMAPS else [],
        [f"not embedded (missing, not a PNG or over {MAX_PICTURE_BYTES // 1000} kB): {p}" for p in missing])
    return (f'<h3>Attention heatmaps: the released model, yours, and the difference</h3>'
            f'<div class="heatmaps">{"".join(shown)}</div>{more}{notes}')


def _notes(*groups: Iterable[str]) -> str:
    return "".join(f'<p class="note">{esc(text)}</p>' for group in groups for text in group)


def png_data_uri(path: Path) -> Optional[str]:
    """`data:image/png;base64,...` for a PNG file of at most MAX_PICTURE_BYTES, else None."""
    try:
        if path.stat().st_size > MAX_PICTURE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(PNG_MAGIC):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _output(output: str) -> str:
    text = output.strip()
    if not text:
        return ""
    shown = text.splitlines()
    kept = "\n".join(shown[:OUTPUT_LINES])[:MAX_OUTPUT_CHARS]
    cut = f" (first {OUTPUT_LINES} of {len(shown)} lines)" if len(shown) > OUTPUT_LINES else ""
    return (f'<section class="card" id="output"><h2>What your code printed{cut}</h2>'
            f'<pre class="out">{esc(kept)}</pre></section>')


def _footer(document: Dict[str, Any]) -> str:
    env, sub = document["environment"], document["submission"]
    sandbox = "sandboxed" if env["sandbox"]["enabled"] else "not sandboxed"
    model = env.get("model") or {}
    ran = f' · model {esc(model["name"])} ({esc(model["why"])})' if model.get("source") else ""
    defined = ", ".join(sub["functions"]) or "none of the contract's functions"
    return (f'<footer>{esc(sub["path"])} · defines {esc(defined)} · sha256 {esc(sub["sha256"] or "none")} · '
            f'attention-autograder '
            f'{esc(env["autograder"])} · Python {esc(env["python"])}, torch {esc(env["torch"])} · {sandbox} · '
            f'graded in {float(document["timing"]["duration_s"]):.1f} s{ran}</footer>')
