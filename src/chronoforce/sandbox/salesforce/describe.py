"""Describe JSON (`/sobjects`, `/sobjects/{Type}/describe`) built once from the schema.

Key names follow Salesforce's DescribeSObjectResult / Field; it must never describe a field the
sandbox does not store or validate.
"""

from __future__ import annotations

from typing import Any

from chronoforce.sandbox.salesforce.schema import NUMERIC, Field, SObject

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "base64": "xsd:base64Binary",
}


def describe_field(f: Field) -> dict[str, Any]:
    text = f.type not in NUMERIC and f.type not in ("boolean", "date", "datetime", "base64")
    return {
        "name": f.name,
        "label": f.label,
        "type": f.type,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "length": f.length if text else 0,
        "byteLength": f.length * 3 if text else 0,
        "precision": f.precision,
        "scale": f.scale,
        "digits": 9 if f.type == "int" else 0,
        "nillable": f.type != "boolean" and not f.required and f.name != "Id",
        "createable": f.createable and f.name != "Id",
        "updateable": f.createable and f.name != "Id",
        "defaultedOnCreate": f.default is not None
        or f.auto_number is not None
        or f.type == "boolean"
        or f.readonly,
        "defaultValue": f.default,
        "custom": f.custom,
        "externalId": f.external_id,
        "unique": f.unique,
        "caseSensitive": False,
        "idLookup": f.name == "Id" or f.external_id,
        "nameField": f.name_field,
        "autoNumber": f.auto_number is not None,
        "calculated": False,
        "filterable": f.type not in ("textarea", "base64") or f.length <= 255,
        "sortable": f.type not in ("textarea", "base64", "multipicklist"),
        "groupable": f.type not in ("double", "currency", "datetime", "textarea", "base64"),
        "aggregatable": f.type != "base64",
        "restrictedPicklist": f.restricted,
        "picklistValues": [
            {
                "value": v,
                "label": v,
                "active": True,
                "defaultValue": v == f.default,
                "validFor": None,
            }
            for v in f.picklist
        ],
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "polymorphicForeignKey": len(f.reference_to) > 1,
    }


def _urls(obj: SObject, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def describe_summary(obj: SObject, version: str) -> dict[str, Any]:
    """The entry of the global describe (`GET /sobjects`)."""
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label + "s",
        "keyPrefix": obj.prefix,
        "custom": obj.custom,
        "createable": True,
        "updateable": not obj.event,
        "deletable": not obj.event,
        "queryable": not obj.event,
        "retrieveable": not obj.event,
        "searchable": not obj.event,
        "triggerable": True,
        "layoutable": not obj.event,
        "urls": _urls(obj, version),
    }


def describe_object(obj: SObject, schema: dict[str, SObject], version: str) -> dict[str, Any]:
    children = [
        {
            "childSObject": child.name,
            "field": f.name,
            "relationshipName": None,
            "cascadeDelete": False,
        }
        for child in schema.values()
        for f in child.fields.values()
        if obj.name in f.reference_to and not f.name.endswith("ById") and f.name != "OwnerId"
    ]
    return {
        **describe_summary(obj, version),
        "fields": [describe_field(f) for f in obj.visible_fields()],
        "childRelationships": children,
        "recordTypeInfos": [],
    }
