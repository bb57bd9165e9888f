"""Traffic routers: one module per mesh, each rendering the object that mesh reads weights from.

Pure: `render` turns a canary and weights into manifests, `weights` reads them back. The shape is
Flagger's router interface (`SetRoutes(canary, primaryWeight, canaryWeight, mirrored)` /
`GetRoutes`), with the routing object written to Git instead of the API server.
"""

from __future__ import annotations

from gitcanary.errors import SpecError
from gitcanary.routers.base import Router
from gitcanary.routers.providers import resolve as router_for

__all__ = ["Router", "SpecError", "router_for"]
