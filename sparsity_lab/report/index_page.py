"""The report's ``index.html``: one card per notebook (used by :mod:`sparsity_lab.report.batch`)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#222;background:#fafafa}
h1{margin-bottom:.2rem} .sub{color:#555;margin-top:0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(380px,1fr));gap:1.2rem}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:1rem;box-shadow:0 1px 2px #0001}
.card.failed{border-color:#c62828}
.card h2{font-size:1.05rem;margin:.2rem 0 .6rem}
.thumb{width:100%;border:1px solid #eee;border-radius:4px;background:#fff}
.nothumb{height:120px;display:flex;align-items:center;justify-content:center;color:#999;border:1px dashed #ccc}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:1rem;font-size:.8rem;font-weight:600}
.ok{background:#c8e6c9;color:#1b5e20} .bad{background:#ffcdd2;color:#b71c1c} .warn{background:#ffe0b2;color:#e65100}
.claims{font-size:.82rem;margin:.4rem 0;padding-left:1.1rem} .claims li{margin:.1rem 0}
.holds{color:#1b5e20} .fails{color:#b71c1c} .untestable{color:#6d4c41}
.card{overflow-wrap:anywhere;word-break:break-word} .meta a{word-break:break-all}
.err{font-family:monospace;font-size:.85rem;color:#b71c1c;white-space:pre-wrap;margin:.4rem 0}
.meta{font-size:.85rem;color:#444;margin:.3rem 0} .caption{font-size:.8rem;color:#555}
code{font-size:.8rem;background:#f1f1f1;padding:0 .2rem;border-radius:3px}
"""


def first_png_thumbnail(executed: Path, width: int = 520) -> str | None:
    """Data URI of the first ``image/png`` output of an executed notebook, shrunk to ``width`` px
    (the original when Pillow cannot read it); None when the notebook shows no PNG."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("image/png")
            if not data:
                continue
            raw = "".join(data) if isinstance(data, list) else data
            try:
                from PIL import Image

                img = Image.open(io.BytesIO(base64.b64decode(raw)))
                img.thumbnail((width, width * 4))
                buf = io.BytesIO()
                img.save(buf, format="PNG", optimize=True)
                raw = base64.b64encode(buf.getvalue()).decode("ascii")
            except Exception:  # an unreadable image is still shown as it is
                raw = "".join(raw.split())
            return f"data:image/png;base64,{raw}"
    return None


def _claims(claims: Sequence[dict[str, Any]], summary: str | None) -> str:
    """The claims' summary (coloured by the worst verdict) and one line per claim."""
    if not claims:
        return ""
    e = html.escape
    worst = next((s for s in ("fails", "untestable", "holds") if any(c.get("status") == s for c in claims)), "holds")
    # a claim that does not hold says in words what it states, then why (the numbers)
    items = "".join(f'<li class="{e(str(c.get("status")))}"><b>{e(str(c.get("claim")))}</b> {e(str(c.get("status")))}: '
                    + (f'<i>{e(str(c.get("statement", "")))}</i> — ' if c.get("status") != "holds" else "")
                    + f'{e(str(c.get("reason", "")))}</li>' for c in claims)
    return f'<div class="meta {worst}"><b>{e(summary or "")}</b></div><ul class="claims">{items}</ul>'


def _card(o: Any, profile: str) -> str:
    e = html.escape
    src = o.thumbnail or next((f for f in o.figures if f.endswith(".png")), None)
    thumb = (f'<img class="thumb" alt="first figure of {e(o.name)}" src="{e(src)}">' if src
             else '<div class="nothumb">no figure</div>')
    if o.html:
        thumb = f'<a href="{e(o.html)}">{thumb}</a>'
    ok = o.status in ("ok", "claims failed")
    kind = {"ok": "ok", "claims failed": "warn", "runs missing": "warn"}.get(o.status, "bad")
    badge = f'<span class="badge {kind}">{e(o.status)}</span>'
    err = "" if ok else f'<div class="err">{e(str(o.error_name))}: {e(str(o.error_message))}</div>'
    claims = _claims(getattr(o, "claims", []), getattr(o, "claims_summary", None))
    runs = ", ".join(f"<code>{e(r)}</code>" for r in o.run_ids[:12])
    if len(o.run_ids) > 12:
        runs += f" … ({len(o.run_ids)} in all)"
    links = [f'<a href="{e(o.html)}">HTML report</a>'] if o.html else []
    links += [f'<a href="{e(o.ipynb)}">executed notebook</a>'] if o.ipynb else []
    links += [f'<a href="{e(f)}">{e(Path(f).name)}</a>' for f in o.figures]
    return (f'<div class="card{" failed" if o.status == "failed" else ""}"><h2>{e(o.name)} {badge}</h2>{thumb}{err}{claims}'
            f'<div class="meta">profile <b>{e(profile)}</b> · {o.wall_s:.1f} s'
            + (" (kept: its inputs are unchanged since that run)" if getattr(o, "reused", False) else "") + ' · '
            f'run ids: {runs or "none"}</div>'
            + (f'<div class="caption">{e(o.caption)}</div>' if o.caption else "")
            + f'<div class="meta">{" · ".join(links)}</div></div>')


def write_index_html(path: Path, outcomes: Sequence[Any], record: dict[str, Any]) -> Path:
    """Write the self-contained index page (thumbnails embedded) and return its path."""
    from sparsity_lab.store.meta import code_version_text

    n_ok = sum(o.status in ("ok", "claims failed") for o in outcomes)
    n_claims = sum(o.status == "claims failed" for o in outcomes)
    shipped = record.get("shipped_gpu")
    gpu = (f" · <a href='{html.escape(shipped)}'>shipped gpu figures</a>" if shipped
           else " · shipped gpu figures: not in this checkout")
    profile = str(record["profile"])
    params = ", ".join(f"{k}={v!r}" for k, v in record.get("parameters", {}).items()) or "none"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>sparsity_lab report: {html.escape(profile)}"
        f"</title><style>{_CSS}</style></head><body><h1>sparsity_lab figures: profile "
        f"<code>{html.escape(profile)}</code></h1><p class='sub'>{n_ok}/{len(outcomes)} notebooks ran ({n_claims} with a failing claim){gpu} · "
        f"started {html.escape(str(record['started']))} UTC · {record['wall_s']:.0f} s · "
        f"code {html.escape(code_version_text())} · overrides: {html.escape(params)} · "
        f"<a href='index.json'>index.json</a></p><div class='grid'>"
        + "".join(_card(o, profile) for o in outcomes) + "</div></body></html>\n"
    )
    path.write_text(page, encoding="utf-8")
    return path
