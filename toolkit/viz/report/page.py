"""The report's page shell: its style and script, plotly.js and the table library embedded once,
figures stored inert as JSON, and text packed (gzip, base64) for the browser to unpack.

``page.css`` and ``page.js`` are static package files, read once: the script takes everything
that varies from the page's ``report-data`` JSON, so no Python value is ever formatted into it.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from itables.javascript import generate_init_offline_itables_html
from itables.options import dt_bundle
from plotly.offline import get_plotlyjs

# The script unpacks plotly.js and trace panels (gzip, base64), draws figures stored as JSON
# when they are shown, opens a trace's panel from the URL hash (#trace=<id>), filters the tables
# by system and hides low-value columns at narrow widths. Trace text reaches the page only as
# HTML escaped by Python, as JSON parsed with JSON.parse, or through textContent.
CSS = files(__package__).joinpath("page.css").read_text(encoding="utf-8")
SCRIPT = files(__package__).joinpath("page.js").read_text(encoding="utf-8")


def json_for_script(value: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, no comments)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def packed(value: Any) -> str:
    """Text or JSON, gzip-compressed and base64-encoded: unpacked in the browser by
    ``DecompressionStream`` (base64 has no ``<``, so it is safe inside a ``<script>``)."""
    raw = value.encode() if isinstance(value, str) else json.dumps(value, default=str).encode()
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


@functools.cache
def _plotly_js() -> str:
    """plotly.js packed (1.4 MB of base64 instead of 4.8 MB of text)."""
    return packed(get_plotlyjs())


@functools.cache
def template() -> dict:
    """The layout template every chart of the report uses (``style``): shipped once per page."""
    layout = json.loads(go.Figure(layout={"template": "plotly_white"}).to_json())["layout"]
    return dict(layout["template"])


def figure_spec(fig: go.Figure) -> dict:
    """A figure as plotly.js takes it, without the house template (the page adds it back)."""
    spec = json.loads(fig.to_json())
    if spec["layout"].get("template") == template():
        del spec["layout"]["template"]
    return {"data": spec["data"], "layout": spec["layout"]}


def figure_json(fig: go.Figure) -> str:
    """A figure stored inert in the page, drawn when shown."""
    spec = json_for_script(json.dumps(figure_spec(fig)))
    return f'<div class="figure"><script type="application/json" class="fig-json">{spec}</script></div>'


class Page:
    """Collects sections; figures are stored as JSON and drawn once plotly.js is unpacked."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, text: str) -> None:
        """Appends HTML (escaped already)."""
        self.parts.append(text)

    def figure(self, fig: go.Figure) -> None:
        """Appends a figure, drawn when its section is shown."""
        self.parts.append(figure_json(fig))

    def write(
        self, path: str | os.PathLike[str], title: str, data: dict[str, Any], panels: list[str]
    ) -> Path:
        """Writes the page, self-contained: style, the table library, the sections, the
        script's ``data``, the packed ``panels``, plotly.js packed, and the script.

        Returns:
            The path written (its folders are created).
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>\n{CSS}</style>"
            f"{generate_init_offline_itables_html(dt_bundle)}</head><body>"
            + "\n".join(self.parts)
            + f"<script type='application/json' id='report-data'>{json_for_script(data)}</script>"
            + f"<script type='application/json' id='panel-data'>{json.dumps(panels)}</script>"
            + f"<script type='application/gzip-base64' id='plotly-gz'>{_plotly_js()}</script>"
            + f"<script>\n{SCRIPT}</script></body></html>\n",
            encoding="utf-8",
        )  # fmt: skip
        return out
