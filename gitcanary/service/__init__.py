"""`gitcanary run` as a service: the reconciler loop, its HTTP server (health, metrics, push
webhooks), its own Prometheus metrics, logs and settings.

The top of the runtime: it wires every edge package to the core. Only `commands` and `demo` import it.
"""
