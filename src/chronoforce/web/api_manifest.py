"""The HTTP API's end-of-day slips: the day's slips, and each one's PDF.

Thin: the pipeline's use case (pipeline/manifest.py) makes, lists and hands out the slips; this
module checks the query and shapes the answer. Guarded by the `labels` scope: a slip is a
shipping document of the same family as a label copy (docs/api.md, "End-of-day slips").
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from chronoforce.pipeline.manifest import Manifests, Slip
from chronoforce.web.api_auth import Caller, LoggedRoute, require
from chronoforce.web.api_models import error_responses
from chronoforce.web.api_service import ApiService

router = APIRouter(prefix="/api/v1", tags=["manifests"], route_class=LoggedRoute)

Labels = Annotated[Caller, Depends(require("labels"))]
AUTH = (401, 403)


class ManifestOut(BaseModel):
    id: int
    account_number: str
    sub_account: str
    location: str
    date: dt.date
    version: int
    parcel_count: int
    total_weight_kg: str = Field(description="kilograms, three decimals")
    salesforce_id: str = Field(
        description="the Salesforce slip record (Chronopost Manifest); empty until sent"
    )
    pdf_url: str
    created_at: dt.datetime


class ManifestList(BaseModel):
    date: dt.date
    manifests: list[ManifestOut]


def manifests_of(service: ApiService) -> Manifests:
    runtime: Any = service.runtime
    return Manifests.from_settings(runtime.settings, runtime.store, runtime.mapping, runtime.now)


def _out(slip: Slip) -> ManifestOut:
    return ManifestOut(
        id=slip.id,
        account_number=slip.account_number,
        sub_account=slip.sub_account,
        location=slip.location,
        date=slip.day,
        version=slip.version,
        parcel_count=slip.parcel_count,
        total_weight_kg=str(slip.total_weight_kg.quantize(Decimal("0.001"))),
        salesforce_id=slip.sf_id,
        pdf_url=f"/api/v1/manifests/{slip.id}.pdf",
        created_at=slip.created_at,
    )


@router.get(
    "/manifests",
    response_model=ManifestList,
    responses=error_responses(*AUTH, 422),
    summary="The day's end-of-day slips (made on the first ask, again when the list changed)",
)
def get_manifests(
    request: Request,
    _: Labels,
    date: Annotated[dt.date, Query(description="Pickup day, YYYY-MM-DD")],
    account: Annotated[str | None, Query(pattern=r"^\d{1,8}$")] = None,
) -> ManifestList:
    """Every version of the day's slips, newest first per account, sub-account and location."""
    service: ApiService = request.app.state.api
    manifests = manifests_of(service)
    manifests.build(date, account)
    service.flush_own_writes()
    return ManifestList(date=date, manifests=[_out(s) for s in manifests.list(date, account)])


@router.get(
    "/manifests/{manifest_id}.pdf",
    responses={
        200: {"content": {"application/pdf": {}}, "description": "the slip's PDF"},
        **error_responses(*AUTH, 404),
    },
    response_class=Response,
    summary="One end-of-day slip's PDF",
)
def get_manifest_pdf(
    request: Request, _: Labels, manifest_id: Annotated[int, Path(ge=1, le=2**53)]
) -> Response:
    slip, pdf = manifests_of(request.app.state.api).pdf(manifest_id)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{slip.filename}"'},
    )
