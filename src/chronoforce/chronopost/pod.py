"""Proof of delivery: searchPOD, the signed delivery slip of one parcel ([D] §2.6.2; [S] §2.10,
§3.18; SPEC-FACTS §8).

statusCode: 1 = not eligible (no signature is required), 2 = no signature or slip available
online, 3 = not ready yet (available one working day after delivery, D+1), 5 = available ([D]
only; `podPresente` true). `pdf` true asks for a PDF, false for an image (PNG, [S]: or JPG).
In-body errors ([S] §3.18.5, codes.py "pod"): 1 = system error (transient), 2 = parcel not in
this contract (account). No I/O here; it must never report a file Chronopost did not send.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from chronoforce.chronopost.config import ChronopostCredentials, Service
from chronoforce.chronopost.soap import parse_envelope, result_of
from chronoforce.chronopost.tracking import LANGUAGE
from chronoforce.chronopost.wsdl import zeep_request, zeep_result

OPERATION = "searchPOD"
NAMESPACE = Service.TRACKING.namespace


class PodStatus(enum.IntEnum):
    """searchPOD's documented statusCode values ([D] §2.6.2.b; [S] §3.18.5)."""

    NOT_ELIGIBLE = 1
    NOT_ONLINE = 2
    NOT_READY = 3
    AVAILABLE = 5


MEANINGS = {
    PodStatus.NOT_ELIGIBLE: "not eligible: no signature is required for this delivery",
    PodStatus.NOT_ONLINE: "no signature or delivery slip available online",
    PodStatus.NOT_READY: "not ready yet: available one working day after delivery",
    PodStatus.AVAILABLE: "available",
}
SUFFIXES = {"PDF": "pdf", "PNG": "png", "JPG": "jpg", "JPEG": "jpg"}


@dataclass(frozen=True, slots=True)
class PodResult:
    """One searchPOD answer. `status` is None for a statusCode the documents do not list
    (`status_code` keeps it); `data` is the file, empty unless `available`."""

    skybill_number: str
    status_code: int
    format: str = ""
    data: bytes = b""

    @property
    def status(self) -> PodStatus | None:
        try:
            return PodStatus(self.status_code)
        except ValueError:
            return None

    @property
    def available(self) -> bool:
        return bool(self.data)

    @property
    def meaning(self) -> str:
        status = self.status
        return MEANINGS[status] if status else f"undocumented statusCode {self.status_code}"

    @property
    def suffix(self) -> str:
        return SUFFIXES.get(self.format.upper(), "bin")


def build_search_pod(credentials: ChronopostCredentials, skybill_number: str, pdf: bool) -> bytes:
    values = {
        "accountNumber": credentials.account_number.strip(),
        "password": credentials.password,
        "language": LANGUAGE,
        "skybillNumber": skybill_number,
        "pdf": pdf,
    }
    return zeep_request(Service.TRACKING, OPERATION, values)


def parse_search_pod(content: bytes, skybill_number: str) -> PodResult:
    """The answer as a PodResult; a non-zero errorCode raises its typed error (codes.py)."""
    root = parse_envelope(content, OPERATION)
    result_of(root, NAMESPACE, OPERATION)
    value = zeep_result(Service.TRACKING, OPERATION, root)
    data = bytes(value.pod or b"") if value.podPresente else b""
    # [D] §2.6.2.b: podPresente = true means statusCode 5; a file sent is a file available.
    code = int(value.statusCode or 0)
    if data and code != PodStatus.AVAILABLE:
        code = PodStatus.AVAILABLE
    fmt = (value.formatPOD or "").strip().upper()
    return PodResult(skybill_number, code, fmt if data else "", data)
