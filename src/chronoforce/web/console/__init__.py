"""The operations console: pages for shipments and exceptions, login, and `/metrics`.

`router` is included by web/app.py; everything is server-rendered from templates/ (Jinja2, one
inlined stylesheet, no JavaScript build). It must never serve data to an anonymous visitor.
"""

from chronoforce.web.console.routes import router
from chronoforce.web.console.settings import console_config

__all__ = ["console_config", "router"]
