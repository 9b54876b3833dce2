"""chronoforce's Salesforce adapter: connection, client, SOQL, field mapping, change detection.

Import from the submodules (`chronoforce.salesforce.client`, `.mapping`, `.changes`…); this
package file stays empty so importing one part never drags in the others (gRPC for Pub/Sub).
"""
