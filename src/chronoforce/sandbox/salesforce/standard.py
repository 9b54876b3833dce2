"""The standard objects the sandbox serves and their standard fields, as one literal table.

Field names, types and lengths follow Salesforce's Object Reference (developer.salesforce.com,
"Object Reference for the Salesforce Platform", v61.0). Custom fields are never listed here: they
come from the metadata package (see schema.py). Each line: `Name type[:arg] flags…` where flags
are `required` (REQUIRED_FIELD_MISSING on create), `readonly`, `ext` (external id), `unique`,
`restricted` (restricted picklist), `name` (the record's name field), `bytes` (the length counts
UTF-8 bytes, as CaseComment.CommentBody does: HELP:000382141), `since=N` (added in API N.0:
unknown to older versions) and `default=V`.
"""

from __future__ import annotations

# Key prefixes (first 3 id characters) from the Object Reference / NOTES.md.
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Organization": "00D",
    "CaseComment": "00a",
    "Product2": "01t",
    "Case": "500",
    "ContentVersion": "068",
    "ContentDocument": "069",
    "ContentDocumentLink": "06A",
    "Order": "801",
    "OrderItem": "802",
    "FeedItem": "0D5",
    "Shipment": "0OB",
    "ShipmentItem": "0OC",
    "OrderSummary": "1Os",
    "FulfillmentOrder": "0a3",
}

# Objects an org has only with Order Management, Field Service, B2B Commerce or a few industry
# clouds (Object Reference, Shipment / ShipmentItem pages; REAL-ORG-FACTS.md §1.1). An
# "Order-only" sandbox org hides them: SOQL answers INVALID_TYPE, describe 404.
LICENSED = frozenset({"Shipment", "ShipmentItem", "OrderSummary", "FulfillmentOrder"})

# Objects whose records have an owner (OwnerId defaults to the integration user).
OWNED = frozenset(
    {"Account", "Contact", "Order", "Case", "Shipment", "OrderSummary", "FulfillmentOrder"}
)

_ADDRESS = """
{p}Street textarea:255
{p}City string:40
{p}State string:80
{p}PostalCode string:20
{p}Country string:80
{p}StateCode string:10
{p}CountryCode string:10
"""

STANDARD_FIELDS: dict[str, str] = {
    "User": """
        Username string:80 required
        LastName string:80 required
        FirstName string:40
        Name string:121 readonly name
        Email email required
        IsActive boolean default=true
    """,
    "Account": """
        Name string:255 required name
        AccountNumber string:40
        Phone phone
        Website url
        Type picklist:Prospect|Customer - Direct|Customer - Channel|Other
        Industry picklist:Retail|Manufacturing|Transportation|Other
        Description textarea:32000
    """
    + _ADDRESS.format(p="Billing")
    + _ADDRESS.format(p="Shipping"),
    "Contact": """
        AccountId ref:Account
        FirstName string:40
        LastName string:80 required
        Name string:121 readonly name
        Salutation picklist:Mr.|Ms.|Mrs.|Dr.|Prof.
        Email email
        Phone phone
        MobilePhone phone
        Title string:128
    """
    + _ADDRESS.format(p="Mailing"),
    "Product2": """
        Name string:255 required name
        ProductCode string:255
        Description textarea:4000
        Family picklist:None
        IsActive boolean default=false
        StockKeepingUnit string:180
        QuantityUnitOfMeasure picklist:Each|Kilogram
    """,
    "Order": """
        OrderNumber auto:{00000000} name
        Name string:80
        AccountId ref:Account required
        EffectiveDate date required
        EndDate date
        Status picklist:Draft|Activated restricted required default=Draft
        StatusCode picklist:Draft|Activated readonly
        Type picklist:New|Return
        PoNumber string:80
        PoDate date
        Description textarea:32000
        BillToContactId ref:Contact
        ShipToContactId ref:Contact
        Pricebook2Id string:18
        TotalAmount currency:18,2 readonly
        CustomerAuthorizedById ref:Contact
        OrderReferenceNumber string:80
    """
    + _ADDRESS.format(p="Billing")
    + _ADDRESS.format(p="Shipping"),
    "OrderItem": """
        OrderItemNumber auto:{0000000000} name
        OrderId ref:Order required
        Product2Id ref:Product2
        PricebookEntryId string:18
        Quantity double:18,2 required
        UnitPrice currency:18,2 required
        TotalPrice currency:18,2 readonly
        ListPrice currency:18,2
        Description string:255
        ServiceDate date
    """,
    # No standard field points at Order: Shipment hangs from Order Management's objects
    # (REAL-ORG-FACTS.md §1.2); Provider is a picklist that is not restricted.
    "Shipment": """
        ShipmentNumber auto:{0000000000} name
        TrackingNumber string:255
        TrackingUrl url
        Provider picklist:Chronopost|UPS|FedEx|DHL
        Status picklist:Shipped|Delivered|Canceled|In Transit
        ShipToName string:255 required
        DeliveredToName string:255
        ExpectedDeliveryDate datetime
        ActualDeliveryDate datetime
        ShippedDate datetime
        OrderSummaryId ref:OrderSummary
        FulfillmentOrderId ref:FulfillmentOrder since=51
        DeliveryMethodId string:18 since=51
        TotalItemsQuantity double:18,2 readonly
        Description textarea:32000
    """
    + _ADDRESS.format(p="ShipTo")
    + _ADDRESS.format(p="ShipFrom"),
    # Order Management: an OrderSummary is made from the original Order; FulfillmentOrders
    # hang from the OrderSummary (Order Management developer guide, object reference).
    "OrderSummary": """
        OrderNumber string:255 name
        OriginalOrderId ref:Order
        AccountId ref:Account
        Status picklist:Created|Approved|Fulfilled|Canceled default=Created
        OrderedDate datetime
    """,
    "FulfillmentOrder": """
        FulfillmentOrderNumber auto:{0000000000} name
        OrderSummaryId ref:OrderSummary
        AccountId ref:Account
        Status picklist:Draft|Allocated|Fulfilled|Canceled default=Draft
        FulfilledToName string:255
    """,
    "ShipmentItem": """
        ShipmentItemNumber auto:{0000000000} name
        ShipmentId ref:Shipment required
        Product2Id ref:Product2
        Quantity double:18,2 required
        OrderItemSummaryId string:18
        Description string:255
    """,
    "Case": """
        CaseNumber auto:{00000000} name
        Subject string:255
        Description textarea:32000
        Status picklist:New|Working|Escalated|Closed default=New
        Origin picklist:Phone|Email|Web
        Priority picklist:High|Medium|Low default=Medium
        Type picklist:Problem|Question|Feature Request
        Reason picklist:Delivery|Damaged|Other
        AccountId ref:Account
        ContactId ref:Contact
        ParentId ref:Case
        IsClosed boolean readonly default=false
        SuppliedEmail email
        SuppliedPhone string:40
    """,
    "CaseComment": """
        ParentId ref:Case required
        CommentBody textarea:4000 bytes
        IsPublished boolean default=false
    """,
    "FeedItem": """
        ParentId ref:Order|Shipment|Case|Account|Contact|User required
        Body textarea:10000
        Title string:255
        Type picklist:TextPost|LinkPost|ContentPost default=TextPost
        LinkUrl url
        IsRichText boolean default=false
    """,
    "ContentDocument": """
        Title string:255 readonly name
        LatestPublishedVersionId ref:ContentVersion readonly
        FileExtension string:40 readonly
        FileType string:20 readonly
        ContentSize int readonly
        Description textarea:1000
    """,
    "ContentVersion": """
        Title string:255 name
        PathOnClient string:500 required
        VersionData base64 required
        ContentDocumentId ref:ContentDocument
        FirstPublishLocationId ref:Order|Shipment|Case|Account|Contact|User|Chronopost_Manifest__c
        Description textarea:1000
        ReasonForChange string:1000
        FileExtension string:40 readonly
        FileType string:20 readonly
        ContentSize int readonly
        IsLatest boolean readonly default=true
        VersionNumber string:20 readonly
        ContentLocation picklist:S|E|L default=S
    """,
    "ContentDocumentLink": """
        ContentDocumentId ref:ContentDocument required
        LinkedEntityId ref:{linkable} required
        ShareType picklist:V|C|I restricted default=V
        Visibility picklist:AllUsers|InternalUsers|SharedUsers restricted default=AllUsers
    """.format(
        linkable="Order|Shipment|Case|Account|Contact|User|Chronopost_Integration_Error__c"
        "|Chronopost_Manifest__c"
    ),
}

# Relationship names that are not "field name minus Id" (Salesforce's own spellings).
RELATIONSHIP_NAMES: dict[tuple[str, str], str] = {}
