"""gitcanary: progressive delivery for GitOps where Git is the only writer of cluster state."""

__version__ = "0.1.0"
