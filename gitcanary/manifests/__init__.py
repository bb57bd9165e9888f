"""The user's and gitcanary's manifests in the clone: discovery, bump detection, rendering the
target with real kustomize, the generated directory, Fleet bundles, the apex takeover, round-trip YAML.

May import `routers` and `spec`; not `core`, `git` or anything with network I/O.
"""
