"""The Pulumi protocol's generated modules (pulumi.runtime.proto) for a stand-in running
as a plugin process, without running the Pulumi SDK's package __init__ files.

The real plugins are Go binaries that start in milliseconds. A stand-in that imported
`pulumi` paid about 0.15 s of CPU on every start for SDK parts it never uses (the
automation API, mocks, the runtime): three stand-ins on every preview, up and destroy the
suite runs. The generated *_pb2 modules import only protobuf, grpc and one another
(relatively), so empty parent packages that point at the SDK's own folders are enough.

Only for a stand-in's own process, before its first protocol import: in a process that
uses the SDK (the tests, which import the stand-ins as modules) nothing is replaced.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

PACKAGES = ("pulumi", "pulumi.runtime", "pulumi.runtime.proto")


def use_bare_protocol_packages() -> None:
    """Make `from pulumi.runtime.proto import X_pb2` load only that module and its own."""
    if any(name in sys.modules for name in PACKAGES):
        return
    spec = importlib.util.find_spec("pulumi")  # finds, does not run, the package
    if spec is None or not spec.submodule_search_locations:
        return  # no SDK: the import that follows says so
    root = Path(next(iter(spec.submodule_search_locations)))
    folders = (root, root / "runtime", root / "runtime" / "proto")
    for name, folder in zip(PACKAGES, folders, strict=True):
        package = types.ModuleType(name, "An empty parent of the protocol modules.")
        package.__path__ = [str(folder)]
        package.__package__ = name
        sys.modules[name] = package
