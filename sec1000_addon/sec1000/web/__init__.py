"""The ingress panel (aiohttp + Jinja2 + HTMX)."""

from sec1000.web.app import create_app
from sec1000.web.keys import HA_STATUS

__all__ = ["HA_STATUS", "create_app"]
