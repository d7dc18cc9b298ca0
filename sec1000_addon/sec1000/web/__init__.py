"""The ingress panel (aiohttp + Jinja2 + HTMX)."""

from sec1000.web.app import create_app

__all__ = ["create_app"]
