"""The compare judge's knobs, read from the Canary's `gitcanary.io/judge-*` annotations.

Annotations keep the Canary valid for Flagger's CRD. A value that does not parse is an error naming
the annotation: the metric checks fail with it, the judge never falls back to a guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitcanary.analysis.judges.stats import EffectFloor
from gitcanary.duration import format_duration, parse_duration
from gitcanary.errors import AnalysisError
from gitcanary.spec.models import Canary

JUDGE_ANNOTATION = "gitcanary.io/judge"
JUDGES = ("threshold", "compare")
CONFIDENCE_ANNOTATION = "gitcanary.io/judge-confidence"
STEP_ANNOTATION = "gitcanary.io/judge-step"
SCRAPE_ANNOTATION = "gitcanary.io/judge-scrape-interval"
WINDOW_ANNOTATION = "gitcanary.io/judge-window"
MIN_SAMPLES_ANNOTATION = "gitcanary.io/judge-min-samples"
EFFECT_ANNOTATION = "gitcanary.io/judge-effect"
REQUESTS_ANNOTATION = "gitcanary.io/judge-requests"

DEFAULT_CONFIDENCE = 0.98
DEFAULT_STEP = "10s"
DEFAULT_SCRAPE = "5s"
DEFAULT_WINDOW = "3m"
DEFAULT_MIN_SAMPLES = 6


def judge_of(canary: Canary, default: str = "threshold") -> str:
    """`gitcanary.io/judge` of `canary`, else the repository default (`run --judge`)."""
    value = canary.metadata.annotations.get(JUDGE_ANNOTATION, default).strip()
    if value not in JUDGES:
        raise AnalysisError(f"annotation {JUDGE_ANNOTATION}: {value!r} is not one of {', '.join(JUDGES)}")
    return value


@dataclass(frozen=True)
class JudgeSettings:
    confidence: float = DEFAULT_CONFIDENCE
    step_seconds: float = 10.0
    window_seconds: float = 180.0
    min_samples: int = DEFAULT_MIN_SAMPLES
    floors: dict[str, EffectFloor] = field(default_factory=dict)
    scrape_seconds: float = 5.0
    requests: dict[str, float] = field(default_factory=dict)

    @property
    def range(self) -> str:
        """`{{ interval }}` of the rendered range queries: one step plus one scrape interval.

        PromQL ranges are open on the left, so a sample's window of exactly one step sees only the
        increase between the scrapes inside it and loses the one across its left edge. Reaching
        back one more scrape makes consecutive windows share exactly their edge scrape: every
        request is counted once, in one sample.
        """
        return format_duration(self.step_seconds + self.scrape_seconds)

    @classmethod
    def of(cls, canary: Canary) -> JudgeSettings:
        notes = canary.metadata.annotations
        try:
            confidence = float(notes.get(CONFIDENCE_ANNOTATION, DEFAULT_CONFIDENCE))
            if not 0.5 <= confidence < 1:
                raise ValueError(f"{confidence} is not in [0.5, 1)")
        except ValueError as exc:
            raise AnalysisError(f"annotation {CONFIDENCE_ANNOTATION}: {exc}") from None
        scrape = _seconds(notes, SCRAPE_ANNOTATION, DEFAULT_SCRAPE, minimum=1)
        step = _seconds(notes, STEP_ANNOTATION, DEFAULT_STEP, minimum=2 * scrape)
        window = _seconds(notes, WINDOW_ANNOTATION, DEFAULT_WINDOW, minimum=step)
        try:
            min_samples = int(notes.get(MIN_SAMPLES_ANNOTATION, DEFAULT_MIN_SAMPLES))
            if min_samples < 3:
                raise ValueError(f"{min_samples} is below 3")
        except ValueError as exc:
            raise AnalysisError(f"annotation {MIN_SAMPLES_ANNOTATION}: {exc}") from None
        floors: dict[str, EffectFloor] = {}
        for entry in filter(None, (part.strip() for part in notes.get(EFFECT_ANNOTATION, "").split(","))):
            name, sep, text = entry.partition("=")
            try:
                if not sep or not name.strip():
                    raise ValueError(f"{entry!r} is not METRIC=+N or METRIC=xN")
                floors[name.strip()] = EffectFloor.parse(text)
            except ValueError as exc:
                raise AnalysisError(f"annotation {EFFECT_ANNOTATION}: {exc}") from None
        requests: dict[str, float] = {}
        for entry in filter(None, (part.strip() for part in notes.get(REQUESTS_ANNOTATION, "").split(","))):
            name, sep, text = entry.partition("=")
            try:
                if not sep or not name.strip():
                    raise ValueError(f"{entry!r} is not METRIC=N")
                count = int(text.strip())
                if not 1 <= count <= 10_000_000:
                    raise ValueError(f"{count} is not between 1 and 10000000")
            except ValueError as exc:
                raise AnalysisError(f"annotation {REQUESTS_ANNOTATION}: {exc}") from None
            requests[name.strip()] = float(count)
        return cls(confidence, step, window, min_samples, floors, scrape, requests)


def _seconds(notes: dict[str, str], key: str, default: str, minimum: float) -> float:
    try:
        seconds = parse_duration(notes.get(key, default))
    except ValueError as exc:
        raise AnalysisError(f"annotation {key}: {exc}") from None
    if seconds < minimum:
        shown = format_duration(seconds)
        raise AnalysisError(f"annotation {key}: {shown} is below {format_duration(minimum)}")
    return float(int(seconds))
