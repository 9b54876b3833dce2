"""The `chronoforce` command line: one typer app, with a sub-app per concern."""

import typer

from chronoforce.sandbox.cli import app as sandbox_app

app = typer.Typer(
    help="chronoforce: Salesforce orders shipped through Chronopost.", no_args_is_help=True
)
app.add_typer(sandbox_app, name="sandbox")
