"""Rollout history and audits, computed from commits and their `Gitcanary-*` trailers alone.

`parse` turns `git log` records into steps (pure), `model` groups steps into rollouts and sums
them up (pure), `gitlog` reads the log in one pass, `verify` checks who wrote and signed each
step, and `report`/`chart` render tables, JSON, Markdown and a self-contained HTML report.
"""
