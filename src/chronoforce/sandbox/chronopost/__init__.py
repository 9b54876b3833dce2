"""The Chronopost sandbox: a SOAP server with Chronopost's paths, operations and error conventions.

Import `ChronopostSandbox` to run it in-process; `chronoforce sandbox chronopost` runs it from
the command line. It imports nothing from chronoforce's layers above the sandbox package.
"""

from chronoforce.sandbox.chronopost.app import SERVICE_PATHS, ChronopostSandbox
from chronoforce.sandbox.chronopost.faults import FAULT_KINDS, FaultConfigError, Faults
from chronoforce.sandbox.chronopost.tables import DEMO_ACCOUNT, DEMO_PASSWORD

__all__ = [
    "DEMO_ACCOUNT",
    "DEMO_PASSWORD",
    "FAULT_KINDS",
    "SERVICE_PATHS",
    "ChronopostSandbox",
    "FaultConfigError",
    "Faults",
]
