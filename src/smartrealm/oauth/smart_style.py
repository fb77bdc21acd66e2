"""The realm's SMART Style document (SMART §4.4 ``smart_style_url``, capability
``context-style``): colours, dimensions and fonts an embedded app may use to look like the
EHR. Every property is optional in the spec; the realm sends all of them.

§4.4: "The URL works as a version key: the EHR SHALL change it whenever the content
changes", so the URL handed to apps carries a hash of the content (``?v=…``); the document is
served at the same path whatever the version parameter says.
"""

from __future__ import annotations

import hashlib
import json

STYLE_PATH = "/smart-style.json"
SMART_STYLE: dict[str, str] = {
    "color_background": "#f6f7f9",
    "color_error": "#a40000",
    "color_highlight": "#1f5fa8",
    "color_modal_backdrop": "rgba(20, 24, 31, 0.5)",
    "color_success": "#2e7d32",
    "color_text": "#1b1b1b",
    "dim_border_radius": "6px",
    "dim_font_size": "14px",
    "dim_spacing_size": "16px",
    "font_family_body": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    "font_family_heading": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
}


def style_document() -> bytes:
    return json.dumps(SMART_STYLE, sort_keys=True).encode()


def style_version() -> str:
    return hashlib.sha256(style_document()).hexdigest()[:16]


def style_url(issuer: str) -> str:
    """The versioned URL put into launches (and so into token responses)."""
    return f"{issuer.rstrip('/')}{STYLE_PATH}?v={style_version()}"
