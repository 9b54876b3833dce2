"""`chronoforce init`, `doctor` and `certify`: from a fresh install to production credentials.

`init` writes a commented configuration and asks for nothing secret; `doctor` checks a first
connection to every configured service (pipeline/doctor.py) and exits 1 when any check fails;
`certify` makes the sample labels Chronopost validates before it issues production credentials.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from chronoforce.cli.common import settings_from
from chronoforce.config import ConfigError, Settings, ShipperConfig, load_settings

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"  # chronoforce/templates


def doctor(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check everything a first connection needs: Salesforce, Chronopost, database, queue."""
    from chronoforce.pipeline.doctor import run_checks

    settings = settings_from(ctx)
    checks = run_checks(settings, settings.worker.queue_name)
    if as_json:
        typer.echo(json.dumps([c.as_dict() for c in checks], indent=2))
    else:
        table = Table(title=f"chronoforce doctor ({settings.source})")
        for column in ("", "area", "check", "what was seen", "what to do"):
            table.add_column(column, overflow="fold")
        for c in checks:
            table.add_row("✔" if c.ok else "✘", c.area, c.name, c.detail, c.fix)
        Console(width=160).print(table)
        failed = sum(1 for c in checks if not c.ok)
        typer.echo(
            f"{len(checks) - failed} of {len(checks)} checks hold"
            + (f"; {failed} to fix" if failed else "")
        )
    if any(not c.ok for c in checks):
        raise typer.Exit(1)


# --- init -------------------------------------------------------------------------------------


# Placeholders the user edits: `init` asks for no address, it shows where one goes.
PLACEHOLDER_SHIPPER = ShipperConfig(
    name="Your company",
    line1="1 rue de l'Exemple",
    postal_code="75011",
    city="Paris",
    country="FR",
    phone="0100000000",
    email="shipping@example.com",
)


def load_settings_from_text(text: str, where: Path) -> Settings:
    """The written file read back exactly as `--config` would read it, environment aside."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / where.name
        path.write_text(text, encoding="utf-8")
        try:
            return load_settings(path, environ={})
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(path), str(where))) from exc


AUTH_SECRETS = {
    "client_credentials": ["CHRONOFORCE_SF_CLIENT_SECRET"],
    "jwt": ["CHRONOFORCE_SF_PRIVATE_KEY"],
    "password": [
        "CHRONOFORCE_SF_CLIENT_SECRET",
        "CHRONOFORCE_SF_PASSWORD",
        "CHRONOFORCE_SF_SECURITY_TOKEN",
    ],
}
ALWAYS_SECRETS = [
    "CHRONOFORCE_CHRONOPOST_PASSWORD",
    "CHRONOFORCE_WEBHOOK_SECRET",
    "CHRONOFORCE_CONSOLE_SESSION_KEY",
    "CHRONOFORCE_METRICS_TOKEN",
]


def init_config(
    out: Annotated[Path, typer.Option("--out", help="Where to write it.")] = Path(
        "chronoforce.yaml"
    ),
    force: Annotated[bool, typer.Option(help="Replace an existing file.")] = False,
    auth: Annotated[
        str, typer.Option(help="Salesforce login flow: client_credentials, jwt or password.")
    ] = "client_credentials",
    instance_url: Annotated[str, typer.Option(help="The org's My Domain URL.")] = "",
    client_id: Annotated[str, typer.Option(help="The connected app's consumer key.")] = "",
    username: Annotated[str, typer.Option(help="The integration user.")] = "",
    sandbox_org: Annotated[
        bool, typer.Option("--sandbox-org", help="A Salesforce sandbox (test.salesforce.com).")
    ] = False,
    account_number: Annotated[str, typer.Option(help="Chronopost account number.")] = "19869502",
    database_url: Annotated[str, typer.Option(help="Default: SQLite beside the file.")] = (
        "sqlite:///./chronoforce.db"
    ),
    queue_url: Annotated[str, typer.Option(help="Empty: huey on SQLite; redis://… scaled.")] = "",
) -> None:
    """Write a commented chronoforce.yaml for a real deployment; asks for nothing secret."""
    import datetime as dt
    from string import Template

    if auth not in AUTH_SECRETS:
        typer.echo(f"--auth must be one of {', '.join(AUTH_SECRETS)}, not {auth!r}", err=True)
        raise typer.Exit(2)
    if out.exists() and not force:
        typer.echo(f"{out} exists: pass --force to replace it", err=True)
        raise typer.Exit(1)
    needed = [*AUTH_SECRETS[auth], *ALWAYS_SECRETS]
    shipper = PLACEHOLDER_SHIPPER
    template = Template((TEMPLATES / "chronoforce.init.yaml").read_text("utf-8"))
    values = {
        "database_url": database_url,
        "queue_url": queue_url,
        "account_number": account_number,
        "instance_url": instance_url,
        "login_url": instance_url
        or ("https://test.salesforce.com" if sandbox_org else "https://login.salesforce.com"),
        "client_id": client_id,
        "username": username,
        **{f"shipper_{k}": v for k, v in shipper.model_dump().items()},
    }
    text = template.substitute(
        # JSON strings are YAML strings: a value with a quote or a colon stays one value.
        {k: json.dumps(v, ensure_ascii=False) for k, v in values.items()},
        date=dt.date.today().isoformat(),
        auth=auth,
        secrets_list="\n".join(f"#   {name}" for name in needed),
    )
    try:
        load_settings_from_text(text, out)
    except ConfigError as exc:  # a value given on the command line the configuration refuses
        typer.echo(f"not written: {exc}", err=True)
        raise typer.Exit(2) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}; edit the shipper address, then set these secrets:")
    for name in needed:
        typer.echo(f"  {name}")
    typer.echo(f"then run: chronoforce --config {out} doctor")


# --- certify ----------------------------------------------------------------------------------


def certify(
    ctx: typer.Context,
    product: Annotated[
        list[str] | None,
        typer.Option(
            "--product", "-p", help="A product code (repeatable); default: all configured."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the labels and the summary.")
    ] = Path("certify-out"),
    production: Annotated[
        bool,
        typer.Option(
            "--use-configured-account",
            help="Label on the configured account instead of Chronopost's test account.",
        ),
    ] = False,
) -> None:
    """Make the sample labels Chronopost validates before it issues production credentials."""
    from pydantic import SecretStr

    from chronoforce.chronopost.client import ChronopostClient
    from chronoforce.domain.models import Address, Contact, LabelFormat, Party
    from chronoforce.domain.routing import RoutingRules
    from chronoforce.pipeline.certify import TEST_ACCOUNT, products_to_certify
    from chronoforce.pipeline.certify import certify as make_samples

    settings = settings_from(ctx)
    if not production and settings.chronopost.account_number != TEST_ACCOUNT:
        # The documented test account's password is public (SPEC-FACTS §12), not a secret.
        test_password = "255562"  # noqa: S105
        settings = settings.model_copy(
            update={
                "chronopost": settings.chronopost.model_copy(
                    update={"account_number": TEST_ACCOUNT, "sub_account": ""}
                ),
                "secrets": settings.secrets.model_copy(
                    update={"chronopost_password": SecretStr(test_password)}
                ),
            }
        )
    try:
        rules = RoutingRules.from_mapping(settings.routing)
        label_format = LabelFormat(settings.chronopost.label_format)
    except ValueError as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from exc
    s = settings.chronopost.shipper
    shipper = Party(
        Address(s.name, s.name2, s.line1, s.line2, s.postal_code, s.city, s.country),
        Contact(s.contact_name, phone=s.phone, email=s.email),
    )
    wanted = products_to_certify(rules, product or ())
    with ChronopostClient.from_settings(settings) as client:
        result = make_samples(
            client,
            shipper,
            wanted,
            out,
            account_number=settings.chronopost.account_number,
            label_format=label_format,
        )
    table = Table(title=f"sample labels on account {result.account_number}")
    for column in ("product", "options", "skybill numbers", "reference", "result"):
        table.add_column(column, overflow="fold")
    for sample in result.samples:
        table.add_row(
            sample.product,
            sample.options,
            " ".join(sample.skybill_numbers),
            sample.reference,
            "label made" if sample.ok else f"refused: {sample.refusal}",
        )
    Console(width=160).print(table)
    typer.echo(f"summary: {result.summary}; label files in {out}/")
    if result.refused:
        codes = ", ".join(s.product for s in result.refused)
        typer.echo(f"{len(result.refused)} product(s) could not be labelled: {codes}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `init`, `doctor` and `certify` to the root app."""
    app.command("init")(init_config)
    app.command("doctor")(doctor)
    app.command("certify")(certify)
