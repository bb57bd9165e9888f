"""The Git edge: gitcanary's own clone (`workspace`), commit messages (`messages`), `Gitcanary-*`
trailers (`trailers`) and the check trailer (`checks`).

May import `core` (to name a decision) and `spec`; nothing above it.
"""
