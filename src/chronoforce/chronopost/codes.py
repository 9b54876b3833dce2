"""Chronopost's in-body `errorCode` table: which typed error each code becomes, in ONE place.

Validation (the request is wrong), account (our credentials or contract) or transient (their
side failed). Pure data and one lookup; it must never do I/O or guess beyond the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from chronoforce.domain.errors import (
    CarrierAccountError,
    CarrierUnavailableError,
    CarrierValidationError,
    ChronoforceError,
)

VALIDATION = CarrierValidationError
ACCOUNT = CarrierAccountError
TRANSIENT = CarrierUnavailableError


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: int
    kind: type[ChronoforceError]
    meaning: str
    source: str


_SAMPLES = "reference samples (karrio test fixtures)"
_WS_ETIQUETTE = "Mouhaha-editions/chronopost enums/ErrorCodeWSEtiquette.php (one source only)"

ERROR_CODES: dict[int, ErrorCode] = {
    entry.code: entry
    for entry in (
        ErrorCode(1, TRANSIENT, "System Error", _SAMPLES),
        ErrorCode(2, VALIDATION, "parcel does not match the account or was not found", _SAMPLES),
        ErrorCode(3, ACCOUNT, "invalid account or password", _SAMPLES),
        ErrorCode(29, TRANSIENT, "system error (label service)", _WS_ETIQUETTE),
        ErrorCode(30, VALIDATION, "invalid contact number", _WS_ETIQUETTE),
        ErrorCode(31, VALIDATION, "empty data", _WS_ETIQUETTE),
        ErrorCode(32, VALIDATION, "incorrect data length", _WS_ETIQUETTE),
        # 33 is both "invalid data" (enum) and "Invalid accesColis account number" (sample):
        # the message decides, see error_for().
        ErrorCode(33, VALIDATION, "invalid data", f"{_SAMPLES}; {_WS_ETIQUETTE}"),
        ErrorCode(34, VALIDATION, "not a number", _WS_ETIQUETTE),
        ErrorCode(35, VALIDATION, "GeoPost service code not found", _WS_ETIQUETTE),
        ErrorCode(36, VALIDATION, "file (label) not found", _WS_ETIQUETTE),
        ErrorCode(37, ACCOUNT, "skybill number range exhausted for the account", _WS_ETIQUETTE),
        ErrorCode(38, VALIDATION, "no routing for this destination", _WS_ETIQUETTE),
    )
}

# Code 33 covers bad data and a bad account number alike; these words in its message mean the
# account (the sample says "Invalid accesColis account number"). Code 2's message also says
# "account" but means a parcel that is not ours, so only 33 is refined by its message.
_ACCOUNT_WORDS = ("account", "password", "compte", "mot de passe")
_REFINED_BY_MESSAGE = frozenset({33})


def error_for(code: int, message: str, operation: str = "") -> ChronoforceError:
    """The typed error for a non-zero errorCode; unknown codes are validation errors.

    Unknown codes are permanent on purpose: retrying a request Chronopost refused for a reason
    we cannot read would only repeat the refusal; the exception row shows code and message.
    """
    entry = ERROR_CODES.get(code)
    kind: type[ChronoforceError] = entry.kind if entry else VALIDATION
    lowered = message.lower()
    if code in _REFINED_BY_MESSAGE and any(word in lowered for word in _ACCOUNT_WORDS):
        kind = ACCOUNT
    text = message.strip() or (entry.meaning if entry else "unknown Chronopost error")
    named = _FIELD_IN_MESSAGE.search(text)
    return kind(
        f"Chronopost error {code}: {text}",
        code=f"CHRONOPOST_{code}",
        operation=operation,
        field=named.group(1) if named else "",
    )


# Messages of codes 31-33 name the refused request element ("Invalid data: recipientCity"): the
# exception row shows it as the field, so a reviewer knows what to fix without reading XML.
_FIELD_IN_MESSAGE = re.compile(
    r"\b(?:empty|invalid|incorrect)\s+data(?:\s+length)?\s*:\s*([A-Za-z][A-Za-z0-9_]*)",
    re.IGNORECASE,
)
