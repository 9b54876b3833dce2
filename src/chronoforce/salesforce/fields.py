"""Every Salesforce field chronoforce writes (and the few custom ones it reads), as one table.

Each entry names the objects it is on, its API name, what it means and which use cases write or
read it. The custom fields come from the metadata package (`salesforce/force-app`,
`salesforce/shipment-app`), the standard ones from Salesforce's Object Reference (as the
sandbox serves them, `sandbox/salesforce/standard.py`); tests/salesforce/test_fields_table.py
holds the table to both. Code outside `salesforce/` names a field through this table, never by a
bare `__c` string. Fields an org's mapping adds (`mapping.writeback`) are configuration, not here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SalesforceField:
    """One field: `objects` it is on, its API name, its meaning, who writes and who reads it."""

    objects: tuple[str, ...]
    api: str
    meaning: str
    written_by: tuple[str, ...] = ()
    read_by: tuple[str, ...] = ()
    only_when: str = ""  # the field exists only on some orgs: which

    @property
    def custom(self) -> bool:
        return self.api.endswith("__c")


# Custom objects of the package (salesforce/force-app/main/default/objects/).
TRACKING_EVENT = "Chronopost_Tracking_Event__c"
INTEGRATION_ERROR = "Chronopost_Integration_Error__c"
SHIP_REQUEST = "Chronopost_Ship_Request__e"  # the platform event a Flow publishes
MANIFEST = "Chronopost_Manifest__c"  # one end-of-day slip (issue 21, pipeline/manifest.py)

ORDERS = ("Order", "Shipment")  # the order object: either, by configuration
_F = SalesforceField

# --- the order (Order and/or Shipment) ------------------------------------------------------
LABEL_STATUS = _F(
    ORDERS,
    "Chronopost_Label_Status__c",
    "where the label stands: Requested (by the user), Created, Cancelled, Error",
    ("labels", "cancel", "exceptions"),
)
STATUS = _F(
    (*ORDERS, "Case"),
    "Chronopost_Status__c",
    "our normalized shipment status (domain/status.py)",
    ("labels", "cancel", "tracking"),
)
LAST_ERROR = _F(
    ORDERS,
    "Chronopost_Last_Error__c",
    "the last failure's code and message (cleared by a label)",
    ("labels", "exceptions"),
)
TRACKING_NUMBER = _F(
    ("Order", "Case"),
    "Chronopost_Tracking_Number__c",
    "every skybill number of the label, comma-separated (the Case: the parcel concerned)",
    ("labels", "tracking"),
)
ORDER_TRACKING_URL = _F(
    ("Order",),
    "Chronopost_Tracking_Url__c",
    "Chronopost's tracking page of the parcels",
    ("labels",),
)
PRODUCT = _F(
    ORDERS,
    "Chronopost_Product__c",
    "the product: on the Order the one asked for (read by routing) or chosen by a rate; on "
    "the Shipment the one used",
    ("labels", "rates"),
    ("labels", "rates", "returns"),
)
SHIPPING_COST = _F(
    ("Order",),
    "Chronopost_Shipping_Cost__c",
    "the quoted cost of the chosen product",
    ("rates",),
)
SKYBILL_NUMBERS = _F(
    ("Shipment",),
    "Chronopost_Skybill_Numbers__c",
    "every skybill number of the label, comma-separated",
    ("labels",),
)
RESERVATION_NUMBER = _F(
    ("Shipment",),
    "Chronopost_Reservation_Number__c",
    "Chronopost's reservation number of the label (to fetch it again)",
    ("labels",),
)
PICKUP_NUMBER = _F(
    ("Order",),
    "Chronopost_Pickup_Number__c",
    "the booked pickup's number",
    ("pickups",),
)
PICKUP_DATE = _F(
    ("Order",),
    "Chronopost_Pickup_Date__c",
    "when the pickup is booked for (UTC)",
    ("pickups",),
)
RETURN_TRACKING_NUMBER = _F(
    ("Order", "Case"),
    "Chronopost_Return_Tracking_Number__c",
    "the return label's skybill numbers (cleared when it is cancelled)",
    ("returns", "cancel"),
)
RETURNS_REFERENCE = _F(
    ("Order",),
    "Chronopost_Returns_Reference__c",
    "the reference the return label carries",
    ("returns",),
)
LAST_EVENT_CODE = _F(
    ORDERS,
    "Chronopost_Last_Event_Code__c",
    "the code of the latest tracking event",
    ("tracking",),
)
LAST_EVENT_LABEL = _F(
    ORDERS,
    "Chronopost_Last_Event_Label__c",
    "the label of the latest tracking event",
    ("tracking",),
)
LAST_EVENT_TIME = _F(
    ORDERS,
    "Chronopost_Last_Event_Time__c",
    "when the latest tracking event happened",
    ("tracking",),
)
LAST_EVENT_PLACE = _F(
    ORDERS,
    "Chronopost_Last_Event_Place__c",
    "where the latest tracking event happened",
    ("tracking",),
)
SHIPMENT_ORDER = _F(
    ("Shipment",),
    "Order__c",
    "the Order a Shipment ships (how a Shipment trigger finds its Order, and back)",
    read_by=("detection",),
)
# Standard fields of Shipment (Object Reference, Shipment) and of both order objects.
SHIPMENT_TRACKING_NUMBER = _F(
    ("Shipment",),
    "TrackingNumber",
    "every skybill number, comma-separated, not the first parcel only",
    ("labels",),
)
SHIPMENT_TRACKING_URL = _F(
    ("Shipment",), "TrackingUrl", "Chronopost's page listing every parcel", ("labels",)
)
PROVIDER = _F(("Shipment",), "Provider", "the carrier: Chronopost", ("labels",))
ACTUAL_DELIVERY_DATE = _F(
    ("Shipment",), "ActualDeliveryDate", "when the parcel was delivered", ("tracking",)
)
RECORD_STATUS = _F(
    (*ORDERS, "Case"),
    "Status",
    "the record's own status, from tracking's status maps (Case: new, updated, closed)",
    ("tracking",),
)

# --- support Cases (standard Case, CaseComment) ----------------------------------------------
CASE_ORDER = _F(
    ("Case",),
    "Chronopost_Order__c",
    "the Order a Case is about (a return label's Case names it)",
    ("tracking", "returns"),
    ("returns",),
)
CASE_SHIPMENT = _F(
    ("Case",), "Chronopost_Shipment__c", "the Shipment a Case is about", ("tracking",)
)
CASE_SUBJECT = _F(("Case",), "Subject", "what happened, and to which order", ("tracking",))
CASE_DESCRIPTION = _F(("Case",), "Description", "the event that opened the Case", ("tracking",))
CASE_ORIGIN = _F(("Case",), "Origin", "tracking.case.origin", ("tracking",))
CASE_PRIORITY = _F(("Case",), "Priority", "tracking.case.priority", ("tracking",))
CASE_RECORD_TYPE = _F(
    ("Case",),
    "RecordTypeId",
    "tracking.case.record_type_id",
    ("tracking",),
    # Object Reference (Case, RecordTypeId): there only when the object has record types; the
    # sandbox defines none, so a Case names one only when it is configured.
    only_when="Case has record types",
)
CASE_OWNER = _F(("Case",), "OwnerId", "tracking.case.owner_id", ("tracking",))
CASE_ACCOUNT = _F(("Case",), "AccountId", "the order's account", ("tracking",))
CASE_TYPE = _F(
    ("Case",), "Type", "a return label's Case is of tracking's return type", (), ("api",)
)
COMMENT_PARENT = _F(("CaseComment",), "ParentId", "the Case commented on", ("tracking",))
COMMENT_BODY = _F(("CaseComment",), "CommentBody", "a later event of the Case", ("tracking",))

# --- tracking events (Chronopost_Tracking_Event__c) ------------------------------------------
EVENT_KEY = _F(
    (TRACKING_EVENT,),
    "Event_Key__c",
    "external id: skybill|code|UTC time, the same event always the same key",
    ("tracking",),
)
EVENT_SKYBILL = _F((TRACKING_EVENT,), "Skybill_Number__c", "the parcel", ("tracking",))
EVENT_CODE = _F((TRACKING_EVENT,), "Code__c", "Chronopost's event code", ("tracking",))
EVENT_LABEL = _F((TRACKING_EVENT,), "Label__c", "Chronopost's event label", ("tracking",))
EVENT_TIME = _F((TRACKING_EVENT,), "Event_Time__c", "when it happened (UTC)", ("tracking",))
EVENT_PLACE = _F((TRACKING_EVENT,), "Place__c", "where it happened", ("tracking",))
EVENT_POSTAL_CODE = _F((TRACKING_EVENT,), "Postal_Code__c", "where: postal code", ("tracking",))
EVENT_STATUS = _F((TRACKING_EVENT,), "Status__c", "our status for the event", ("tracking",))
EVENT_SHIPMENT = _F((TRACKING_EVENT,), "Shipment__c", "the Shipment", ("tracking",))
EVENT_ORDER = _F((TRACKING_EVENT,), "Order__c", "the Order", ("tracking",))

# --- the review queue's mirror (Chronopost_Integration_Error__c) -----------------------------
ERROR_KEY = _F(
    (INTEGRATION_ERROR,), "External_Key__c", "external id: cf-<exception id>", ("exceptions",)
)
ERROR_RECORD = _F((INTEGRATION_ERROR,), "Record_Id__c", "the record concerned", ("exceptions",))
ERROR_OPERATION = _F((INTEGRATION_ERROR,), "Operation__c", "what we were doing", ("exceptions",))
ERROR_CODE = _F((INTEGRATION_ERROR,), "Code__c", "the error's code", ("exceptions",))
ERROR_FIELD = _F((INTEGRATION_ERROR,), "Field__c", "the field at fault", ("exceptions",))
ERROR_MESSAGE = _F((INTEGRATION_ERROR,), "Message__c", "the error's message", ("exceptions",))
ERROR_REQUEST = _F(
    (INTEGRATION_ERROR,), "Request_Payload__c", "what was sent (redacted)", ("exceptions",)
)
ERROR_RESPONSE = _F(
    (INTEGRATION_ERROR,), "Response_Payload__c", "what was answered (redacted)", ("exceptions",)
)
ERROR_ATTEMPTS = _F((INTEGRATION_ERROR,), "Attempts__c", "attempts so far", ("exceptions",))
ERROR_STATE = _F((INTEGRATION_ERROR,), "State__c", "Open or Resolved", ("exceptions",))
ERROR_FIRST_SEEN = _F((INTEGRATION_ERROR,), "First_Seen__c", "first seen (UTC)", ("exceptions",))
ERROR_LAST_SEEN = _F((INTEGRATION_ERROR,), "Last_Seen__c", "last seen (UTC)", ("exceptions",))
ERROR_ORDER = _F((INTEGRATION_ERROR,), "Order__c", "the Order concerned", ("exceptions",))
ERROR_SHIPMENT = _F((INTEGRATION_ERROR,), "Shipment__c", "the Shipment", ("exceptions",))

# --- label files (salesforce/files.py) -------------------------------------------------------
FILE_KEY = _F(
    ("ContentVersion",),
    "Chronoforce_Key__c",
    "external id of a file: an interrupted upload is found instead of repeated",
    ("files",),
    ("files",),
)
FILE_TITLE = _F(("ContentVersion",), "Title", "the file's title", ("files",))
FILE_NAME = _F(("ContentVersion",), "PathOnClient", "the file's name (.pdf, .zpl)", ("files",))
FILE_DATA = _F(("ContentVersion",), "VersionData", "the label bytes, base64", ("files",))
FILE_FIRST_RECORD = _F(
    ("ContentVersion",),
    "FirstPublishLocationId",
    "the record the file is filed on first",
    ("files",),
)
LINK_DOCUMENT = _F(
    ("ContentDocumentLink",), "ContentDocumentId", "the file shared", ("files",), ("files",)
)
LINK_RECORD = _F(
    ("ContentDocumentLink",),
    "LinkedEntityId",
    "the record it is shared with",
    ("files",),
    ("files",),
)
LINK_SHARE_TYPE = _F(("ContentDocumentLink",), "ShareType", "V: viewer", ("files",))
LINK_VISIBILITY = _F(("ContentDocumentLink",), "Visibility", "AllUsers", ("files",))

# --- proof of delivery, Chrono Precise slots, shipper location (issues 21 and 23) ------------
POD_STATUS = _F(
    ORDERS,
    "Chronopost_POD_Status__c",
    "the proof of delivery: Pending, Available, Not eligible, Not available online, Gave up",
    ("pod",),
)
SLOT_START = _F(("Order",), "Chronopost_Slot_Start__c", "the Precise slot's start", ("precise",))
SLOT_END = _F(("Order",), "Chronopost_Slot_End__c", "the Precise slot's end", ("precise",))
SLOT_LEVEL = _F(
    ("Order",), "Chronopost_Slot_Level__c", "the Precise slot's tariff level N1-N4", ("precise",)
)
LOCATION = _F(
    ("Order",),
    "Chronopost_Location__c",
    "the shipper location the order leaves from (when mapping.location names it)",
    read_by=("locations",),
)

# --- the end-of-day slip record (Chronopost_Manifest__c, issue 21) ----------------------------
MANIFEST_KEY = _F((MANIFEST,), "Chronoforce_Key__c", "our key: group and day", ("manifest",))
MANIFEST_DAY = _F((MANIFEST,), "Pickup_Date__c", "the pickup day", ("manifest",))
MANIFEST_ACCOUNT = _F((MANIFEST,), "Account_Number__c", "the Chronopost account", ("manifest",))
MANIFEST_SUB_ACCOUNT = _F((MANIFEST,), "Sub_Account__c", "the sub-account", ("manifest",))
MANIFEST_LOCATION = _F((MANIFEST,), "Location__c", "the shipper location", ("manifest",))
MANIFEST_PARCELS = _F((MANIFEST,), "Parcel_Count__c", "parcels handed over", ("manifest",))
MANIFEST_WEIGHT = _F((MANIFEST,), "Total_Weight__c", "their total weight (kg)", ("manifest",))
MANIFEST_VERSION = _F((MANIFEST,), "Version__c", "the slip's version", ("manifest",))

# --- the platform event a Flow publishes (docs/pubsub.md) ------------------------------------
REQUEST_RECORD = _F((SHIP_REQUEST,), "Record_Id__c", "the record to ship", read_by=("detection",))

FIELDS: tuple[SalesforceField, ...] = tuple(
    value for value in dict(globals()).values() if isinstance(value, SalesforceField)
)
