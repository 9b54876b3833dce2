"""`chronoforce sandbox …`: start and manage the sandboxes from the command line."""

import typer

app = typer.Typer(
    help="Run the Chronopost and Salesforce sandboxes (servers on loopback).", no_args_is_help=True
)

# Each sandbox owns its command group; they are mounted here.
from chronoforce.sandbox.chronopost.cli import app as chronopost_app  # noqa: E402

app.add_typer(chronopost_app, name="chronopost")
from chronoforce.sandbox.salesforce.cli import app as salesforce_app  # noqa: E402

app.add_typer(salesforce_app, name="salesforce")
