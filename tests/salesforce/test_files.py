"""The file protocol (`salesforce/files.py`) against the Salesforce sandbox: a file is made once
by our key, shared with the other records once, and unshared without touching its owner."""

from __future__ import annotations

from chronoforce.salesforce import files

PDF = b"%PDF-1.4 label for the test\n%%EOF"


def _shipment(client, order):
    (result,) = client.collection(
        "create", "Shipment", [{"ShipToName": "Marie Curie", "Order__c": order}]
    )
    return result.id


def _links(org, document):
    return {
        r["LinkedEntityId"]
        for r in org.sandbox.records("ContentDocumentLink")
        if r["ContentDocumentId"] == document
    }


def _upload(key, order, shipment, retried=False):
    return files.FileUpload(
        key=key,
        title="Label 1",
        filename="label.pdf",
        first_publish_location_id=order,
        link_to=(shipment,),
        retried=retried,
    )


def test_a_file_is_made_with_our_key_and_linked_to_the_other_records(org, client, orders):
    (order,) = orders(client, 1)
    shipment = _shipment(client, order)
    asked: list[list[int]] = []

    def data(indexes):
        asked.append(list(indexes))
        return [PDF for _ in indexes]

    done = files.upload(client, [_upload("file:1:1", order, shipment)], data)
    (document,) = done.documents
    assert document and document.startswith("069") and done.errors == [[]]
    (version,) = org.sandbox.records("ContentVersion")
    assert version[files.FILE_KEY_FIELD] == "file:1:1"
    assert {order, shipment} <= _links(org, document)
    assert asked == [[0]]
    assert done.calls == 2  # one Composite call (the create, its documents), the links


def test_a_retried_upload_adopts_the_file_and_sends_no_second_link(org, client, orders):
    (order,) = orders(client, 1)
    shipment = _shipment(client, order)
    first = files.upload(client, [_upload("file:2:1", order, shipment)], lambda i: [PDF] * len(i))
    links_before = len(org.sandbox.records("ContentDocumentLink"))

    def no_data(indexes):
        raise AssertionError(f"bytes asked again for {indexes}")

    again = files.upload(client, [_upload("file:2:1", order, shipment, retried=True)], no_data)
    assert again.documents == first.documents
    assert len(org.sandbox.records("ContentVersion")) == 1
    assert len(org.sandbox.records("ContentDocumentLink")) == links_before
    assert again.calls == 2  # the key lookup and the links lookup, nothing created


def test_a_key_taken_by_an_unseen_upload_is_adopted(org, client, orders):
    (order,) = orders(client, 1)
    shipment = _shipment(client, order)
    first = files.upload(client, [_upload("file:3:1", order, shipment)], lambda i: [PDF] * len(i))
    # Not marked retried: the create is refused with DUPLICATE_VALUE, and the file is found.
    again = files.upload(client, [_upload("file:3:1", order, shipment)], lambda i: [PDF] * len(i))
    assert again.documents == first.documents
    assert any("DUPLICATE_VALUE" in str(e) for e in again.errors[0])
    assert len(org.sandbox.records("ContentVersion")) == 1


def test_unshare_deletes_record_links_but_keeps_the_owner_and_the_file(org, client, orders):
    (order,) = orders(client, 1)
    shipment = _shipment(client, order)
    made = files.upload(client, [_upload("file:4:1", order, shipment)], lambda i: [PDF] * len(i))
    (document,) = made.documents
    done = files.unshare(client, ["file:4:1", "file:never:made"])
    assert done.document == {"file:4:1": document}
    assert not done.failed
    left = _links(org, document)
    assert order not in left and shipment not in left
    assert all(x.startswith(files.USER_PREFIX) for x in left)
    assert len(org.sandbox.records("ContentVersion")) == 1


def test_unshare_of_files_never_made_costs_one_query(client):
    done = files.unshare(client, ["file:none:1"])
    assert done.document == {} and done.links == {} and done.calls == 1
