"""`chronoforce console …`: helpers for the operations console (docs/console.md).

`hash-password` prints an argon2id hash for the `console.users` list; the password is read from
a hidden prompt or stdin, never from the command line, and is never printed or logged.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

app = typer.Typer(help="The operations console: users and passwords.", no_args_is_help=True)


@app.command("hash-password")
def hash_password(
    stdin: Annotated[
        bool, typer.Option("--stdin", help="Read the password from standard input (scripts).")
    ] = False,
) -> None:
    """Print an argon2id hash to put under `console.users[].hash` in chronoforce.yaml."""
    # Imported here for start-up time: the console package loads FastAPI and its templates.
    from chronoforce.web.console.auth import hash_password as make_hash

    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        typer.echo("refused: use at least 12 characters", err=True)
        raise typer.Exit(2)
    typer.echo(make_hash(password))
