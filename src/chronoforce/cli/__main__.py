"""`python -m chronoforce.cli …`: the same as the `chronoforce` console script."""

from chronoforce.cli.main import app

app()
