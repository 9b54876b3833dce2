"""The `chronoforce` command line (typer): `main.py` is the root app, one module per command group.

`app` is re-exported so `chronoforce.cli:app` and `python -m chronoforce.cli` keep working.
"""

from chronoforce.cli.main import app

__all__ = ["app"]
