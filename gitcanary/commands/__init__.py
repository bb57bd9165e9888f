"""The command line: `cli` parses and prints; the one-shot commands (init, status, validate,
manual actions) live beside it. The top layer: it may import every package, and none imports it.
"""
