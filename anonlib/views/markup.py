"""HTML helpers shared by every view."""

from __future__ import annotations

import html


def esc(text: str) -> str:
    """``text`` safe inside HTML content and inside a double- or single-quoted attribute."""
    return html.escape(text, quote=True)
