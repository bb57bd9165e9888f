"""Surviving mutants that no test can tell from the original, each with the reason (scripts/mutate.py).

Keyed by (module, cosmic-ray operator, the mutated line's source text stripped), so an entry stays
valid while the code around it moves, and lapses (the mutant is counted again) when the line changes.
"""

from __future__ import annotations

EQUIVALENT: dict[tuple[str, str, str], str] = {}
