"""The console's pages and actions (server-rendered Jinja2) and `GET /metrics`.

Every route here needs a console login except `/login` itself and `/metrics` with its bearer
token; an anonymous page visit is sent to `/login` (303). Every POST carries the session's CSRF
token. Handlers only read through queries.py and write through actions.py; no business rules.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass, replace
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from chronoforce import metrics
from chronoforce.config import Settings
from chronoforce.domain.errors import ChronoforceError, NotFoundError
from chronoforce.domain.models import LabelFormat
from chronoforce.logs import get_logger
from chronoforce.pipeline.manifest import Manifests
from chronoforce.pipeline.writeback import PDF_FORMATS
from chronoforce.salesforce.mapping import MappingConfig
from chronoforce.store.db import Store
from chronoforce.store.models import ExceptionRow, Parcel
from chronoforce.web.clock import clock_of
from chronoforce.web.console import actions, queries
from chronoforce.web.console.auth import (
    COOKIE,
    LOGIN_CSRF_COOKIE,
    LoginThrottle,
    Session,
    SessionSigner,
    check_password,
)
from chronoforce.web.console.settings import ConsoleConfig, console_config

log = get_logger(component="console")

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(resources.files("chronoforce.web.console") / "templates"))


@dataclass
class ConsoleState:
    config: ConsoleConfig
    signer: SessionSigner
    throttle: LoginThrottle
    mapping: MappingConfig
    store: Store
    instance_url: str
    metrics_token: str
    registry: CollectorRegistry


def console_state(request: Request) -> ConsoleState:
    """Built once per app from its settings (the first request pays for it)."""
    app_state = request.app.state
    found = getattr(app_state, "console", None)
    if isinstance(found, ConsoleState):
        return found
    settings: Settings = app_state.settings
    config = console_config(settings.console)
    if not config.users:
        log.warning("no console users configured: nobody can log in (docs/console.md)")
    key = settings.secrets.console_session_key
    if key is None:
        log.warning("CHRONOFORCE_CONSOLE_SESSION_KEY is not set: sessions end when this stops")
    token = settings.secrets.metrics_token
    state = ConsoleState(
        config=config,
        signer=SessionSigner(key.get_secret_value().encode() if key else secrets.token_bytes(32)),
        throttle=LoginThrottle(config.login_attempts, config.login_window_s),
        mapping=MappingConfig.from_settings(settings.mapping),
        store=app_state.store,
        instance_url=settings.salesforce.instance_url.rstrip("/"),
        metrics_token=token.get_secret_value() if token else "",
        registry=metrics.app_registry(app_state.store),
    )
    app_state.console = state
    return state


State = Annotated[ConsoleState, Depends(console_state)]


def _safe_next(target: str) -> str:
    """Only a path on this site: never `//elsewhere` or a full URL (open redirect)."""
    # Browsers read a backslash as a slash: `/\host` is `//host` to them.
    return target if target.startswith("/") and target[1:2] not in ("/", "\\") else "/"


def current_session(request: Request, state: State) -> Session | None:
    return state.signer.read(request.cookies.get(COOKIE))


def require_login(request: Request, state: State) -> Session:
    session = current_session(request, state)
    if session is None or state.config.user(session.username) is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "login required", {"Location": f"/login?next={quote(target)}"})
    return session


User = Annotated[Session, Depends(require_login)]
# A row id in a URL: past 2**53 no row has it, and SQLite could not even bind it (a 500).
RowId = Annotated[int, Path(ge=1, le=2**53)]


def _check_csrf(session: Session, csrf: str) -> None:
    if not session.csrf_ok(csrf):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and try again")


def _page(
    request: Request, name: str, session: Session | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    state: ConsoleState = request.app.state.console
    return templates.TemplateResponse(
        request,
        name,
        status_code=status_code,
        context={
            "user": session,
            "message": request.query_params.get("msg", ""),
            "sf_link": lambda sf_object, sf_id: (
                f"{state.instance_url}/lightning/r/{sf_object}/{sf_id}/view"
                if state.instance_url and sf_id
                else ""
            ),
            **context,
        },
    )


def _back(path: str, message: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'msg': message})}", status_code=303)


# --- login -------------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request, state: State, next: str = "/", error: str = "") -> Response:
    token = secrets.token_urlsafe(24)
    response = _page(
        request, "login.html", None, next=_safe_next(next), error=error, login_csrf=token
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, token, max_age=600, httponly=True, samesite="lax",
        secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


@router.post("/login")
def login(
    request: Request,
    state: State,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        raise HTTPException(403, "CSRF token missing or wrong: reload the login page")
    client = request.client.host if request.client else "?"
    if state.throttle.blocked(username, client):
        log.warning("login throttled", username=username, client=client)
        return _page(
            request, "login.html", None, next=_safe_next(next), login_csrf=csrf,
            error="Too many failed attempts: wait a few minutes.", status_code=429,
        )  # fmt: skip
    if not check_password(state.config, username, password):
        state.throttle.failed(username, client)
        log.info("login failed", username=username, client=client)
        query = urlencode({"next": _safe_next(next), "error": "Wrong username or password."})
        return RedirectResponse(f"/login?{query}", status_code=303)
    state.throttle.succeeded(username, client)
    _, cookie = state.signer.issue(username, state.config.session_hours * 3600)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE, cookie, max_age=int(state.config.session_hours * 3600), httponly=True,
        samesite="lax", secure=request.url.scheme == "https",
    )  # fmt: skip
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    log.info("login", username=username)
    return response


@router.post("/logout")
def logout(user: User, csrf: Annotated[str, Form()] = "") -> Response:
    _check_csrf(user, csrf)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


# --- pages -------------------------------------------------------------------------------------


def _now(request: Request) -> dt.datetime:
    return clock_of(request).now()


@router.get("/")
def overview_page(request: Request, state: State, user: User) -> Response:
    with state.store.session() as session:
        data = queries.overview(session, _now(request))
    return _page(request, "overview.html", user, o=data, page="overview")


@router.get("/shipments")
def shipments_page(request: Request, state: State, user: User, q: str = "") -> Response:
    with state.store.session() as session:
        rows = queries.search_shipments(session, q)
        skybills = queries.skybills_by_shipment(session, [r.id for r in rows])
        customers = {r.id: queries.customer_of(r, state.mapping) for r in rows}
    return _page(
        request, "shipments.html", user, rows=rows, skybills=skybills, customers=customers,
        q=q, page="shipments",
    )  # fmt: skip


@router.get("/shipments/{shipment_id}")
def shipment_page(request: Request, state: State, user: User, shipment_id: RowId) -> Response:
    with state.store.session() as session:
        story = queries.shipment_story(session, shipment_id, state.mapping)
    if story is None:
        raise HTTPException(404, f"no shipment {shipment_id}")
    return _page(
        request, "shipment.html", user, s=story, page="shipments",
        reprint_ask=secrets.token_hex(8), label_modes=[m.value for m in LabelFormat],
    )  # fmt: skip


@router.get("/parcels/{parcel_id}/label")
def label_download(state: State, user: User, parcel_id: RowId) -> Response:
    with state.store.session() as session:
        parcel = session.get(Parcel, parcel_id)
        data = parcel.label_bytes if parcel else None
        if parcel is not None and data is None and parcel.label_path:
            with open(parcel.label_path, "rb") as handle:
                data = handle.read()
        if parcel is None or not data:
            raise HTTPException(404, f"no label stored for parcel {parcel_id}")
        pdf = parcel.label_format in PDF_FORMATS
        name = f"chronopost-{parcel.skybill_number}.{'pdf' if pdf else 'zpl'}"
    return Response(
        data,
        media_type="application/pdf" if pdf else "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/exceptions")
def exceptions_page(
    request: Request, state: State, user: User, kind: str = "", status: str = "open"
) -> Response:
    with state.store.session() as session:
        rows = queries.exception_rows(session, kind, status)
    return _page(
        request, "exceptions.html", user, rows=rows, kind=kind, status=status,
        kinds=list(queries.EXCEPTION_KINDS), page="exceptions",
    )  # fmt: skip


@router.get("/exceptions/{exception_id}")
def exception_page(request: Request, state: State, user: User, exception_id: RowId) -> Response:
    return _exception_view(request, state, user, exception_id)


def _exception_view(
    request: Request,
    state: ConsoleState,
    user: Session,
    exception_id: int,
    error: str = "",
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with state.store.session() as session:
        row = session.get(ExceptionRow, exception_id)
        if row is None:
            raise HTTPException(404, f"no exception {exception_id}")
        shipment = row.shipment_id and queries.shipment_story(
            session, row.shipment_id, state.mapping
        )
        fields = (
            actions.address_fields(shipment.shipment, state.mapping)
            if shipment and row.kind == "address"
            else []
        )
        choices = (
            actions.address_choices(shipment.shipment, state.mapping)
            if shipment and row.kind == "address"
            else []
        )
    if typed:
        fields = [replace(f, value=typed.get(f.sf_field, f.value)) for f in fields]
    return _page(
        request, "exception.html", user, status_code, e=row, story=shipment or None,
        fields=fields, choices=choices, error=error, page="exceptions",
    )  # fmt: skip


# --- actions -----------------------------------------------------------------------------------


@router.post("/exceptions/{exception_id}/retry")
def retry_exception(
    state: State, user: User, exception_id: RowId, csrf: Annotated[str, Form()] = ""
) -> Response:
    _check_csrf(user, csrf)
    try:
        with state.store.session() as session:
            shipment_id = actions.retry(session, exception_id, user.username)
    except actions.ActionError as exc:
        return _back(f"/exceptions/{exception_id}", str(exc))
    what = f"shipment {shipment_id} is back in line" if shipment_id else "writes put back in line"
    return _back(f"/exceptions/{exception_id}", f"Retrying: {what}.")


@router.post("/exceptions/{exception_id}/resolve")
def resolve_exception(
    state: State,
    user: User,
    exception_id: RowId,
    csrf: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    _check_csrf(user, csrf)
    try:
        with state.store.session() as session:
            actions.resolve(session, exception_id, note, user.username)
    except actions.ActionError as exc:
        return _back(f"/exceptions/{exception_id}", str(exc))
    return _back(f"/exceptions/{exception_id}", "Resolved.")


@router.post("/exceptions/{exception_id}/fix-address")
async def fix_address(request: Request, state: State, user: User, exception_id: RowId) -> Response:
    form = await request.form()
    _check_csrf(user, str(form.get("csrf") or ""))
    values = {str(k).removeprefix("f:"): str(v) for k, v in form.items() if str(k).startswith("f:")}

    def work() -> int | None:
        with state.store.session() as session:
            return actions.fix_address(session, exception_id, values, state.mapping, user.username)

    from fastapi.concurrency import run_in_threadpool

    try:
        shipment_id = await run_in_threadpool(work)
    except actions.ActionError as exc:
        # Show the form again with what was typed, so a near miss is one edit away.
        return await run_in_threadpool(
            _exception_view, request, state, user, exception_id, str(exc), values, 422
        )
    return _back(
        f"/exceptions/{exception_id}",
        f"Address corrected (written back to Salesforce); shipment {shipment_id} is back in line.",
    )


@router.post("/shipments/{shipment_id}/reprint")
def reprint_label(
    request: Request,
    user: User,
    shipment_id: RowId,
    csrf: Annotated[str, Form()] = "",
    ask: Annotated[str, Form(max_length=64, pattern=r"^[A-Za-z0-9_-]*$")] = "",
    mode: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The shipment's stored label again from Chronopost (issue 21 item 5), as a download; the
    page's own `ask` id makes a double click one re-print and one Salesforce file."""
    _check_csrf(user, csrf)
    back = f"/shipments/{shipment_id}"
    try:
        label_format = LabelFormat(mode) if mode else None
    except ValueError:
        return _back(back, f"Re-print refused: {mode!r} is not a Chronopost label mode.")
    try:
        done = request.app.state.api.reprints().reprint(
            shipment_id, label_format=label_format,
            request_key=f"console:{user.username}:{ask}" if ask else None,
            requested_by=f"console:{user.username}",
        )  # fmt: skip
    except ChronoforceError as exc:
        return _back(back, f"Re-print refused: {exc.message}")
    return Response(
        done.data,
        media_type="application/pdf" if done.label_format.is_pdf else "application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{done.filename}"'},
    )


# --- metrics -----------------------------------------------------------------------------------


@router.get("/metrics")
def metrics_endpoint(request: Request, state: State) -> Response:
    """Prometheus text format. Access: `console.metrics` (docs/console.md)."""
    if state.config.metrics != "open":
        offered = request.headers.get("authorization", "")
        expected = f"Bearer {state.metrics_token}"
        token_ok = bool(state.metrics_token) and hmac.compare_digest(
            offered.encode(), expected.encode()
        )
        if not token_ok and current_session(request, state) is None:
            raise HTTPException(
                401, "metrics need a bearer token", {"WWW-Authenticate": 'Bearer realm="metrics"'}
            )
    return Response(metrics.render(state.registry), media_type=CONTENT_TYPE_LATEST)


# --- end-of-day slips (issue 21): the day's slips, made through the pipeline's use case -------


def _manifests(request: Request, state: ConsoleState) -> Manifests:
    return Manifests.from_settings(request.app.state.settings, state.store, state.mapping)


@router.get("/manifests")
def manifests_page(request: Request, state: State, user: User, date: str = "") -> Response:
    manifests = _manifests(request, state)
    try:
        today = _now(request).astimezone(manifests.zone).date()
        day = dt.date.fromisoformat(date) if date else today
    except ValueError:
        raise HTTPException(400, f"date {date!r} is not a day (YYYY-MM-DD)") from None
    manifests.build(day)  # made once per group and day; again only when the list changed
    rows = manifests.list(day)
    return _page(request, "manifests.html", user, rows=rows, day=day, page="manifests")


@router.get("/manifests/{manifest_id}.pdf")
def manifest_download(request: Request, state: State, user: User, manifest_id: RowId) -> Response:
    try:
        slip, pdf = _manifests(request, state).pdf(manifest_id)
    except NotFoundError:
        raise HTTPException(404, f"no slip {manifest_id}") from None
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{slip.filename}"'},
    )
