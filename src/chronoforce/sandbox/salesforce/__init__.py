"""The Salesforce sandbox: an HTTPS server speaking Salesforce's REST API, OAuth and SOAP login.

Import `SalesforceSandbox` to run it in-process (`sb.app` is the ASGI app); `chronoforce sandbox
salesforce` runs it from the command line. It imports nothing from chronoforce's upper layers.
"""

from chronoforce.sandbox.salesforce.auth import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_SECURITY_TOKEN,
    DEMO_USERNAME,
    ConnectedApp,
    SandboxUser,
)
from chronoforce.sandbox.salesforce.sandbox import SalesforceSandbox

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_PASSWORD",
    "DEMO_SECURITY_TOKEN",
    "DEMO_USERNAME",
    "ConnectedApp",
    "SalesforceSandbox",
    "SandboxUser",
]
