"""Pydantic models of Flagger's `flagger.app/v1beta1` Canary and MetricTemplate.

Field names follow Flagger's CRD (camelCase aliases); only what gitcanary acts on is typed.
Everything else the CRD allows is kept in `model_extra` and reported by `load.py` as unsupported.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gitcanary.duration import parse_duration


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=True)


class ObjectMeta(_Model):
    name: str
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class CrossNamespaceRef(_Model):
    name: str
    namespace: str | None = None


class TargetRef(_Model):
    api_version: str = Field("apps/v1", alias="apiVersion")
    kind: str = "Deployment"
    name: str


class ThresholdRange(_Model):
    min: float | None = None
    max: float | None = None


class CanaryMetric(_Model):
    name: str
    interval: str | None = None
    threshold: float | None = None
    threshold_range: ThresholdRange | None = Field(None, alias="thresholdRange")
    query: str | None = None
    template_ref: CrossNamespaceRef | None = Field(None, alias="templateRef")
    template_variables: dict[str, str] = Field(default_factory=dict, alias="templateVariables")

    @field_validator("interval")
    @classmethod
    def _interval_is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class CanaryWebhook(_Model):
    name: str
    type: str = ""
    url: str
    timeout: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    retries: int = 0
    mute_alert: bool = Field(False, alias="muteAlert")
    disable_tls: bool = Field(False, alias="disableTLS")

    @field_validator("timeout")
    @classmethod
    def _timeout_is_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class CanaryAlert(_Model):
    name: str
    severity: str = "info"
    provider_ref: CrossNamespaceRef = Field(alias="providerRef")


class SessionAffinity(_Model):
    """Flagger's `analysis.sessionAffinity`: the cookie that keeps a user on the side they landed on."""

    cookie_name: str = Field(alias="cookieName")
    primary_cookie_name: str = Field("", alias="primaryCookieName")
    max_age: int = Field(86400, alias="maxAge")  # Flagger's GetMaxAge: 0 or unset is a day
    domain: str = ""
    http_only: bool = Field(False, alias="httpOnly")
    partitioned: bool = False
    path: str = ""
    same_site: str = Field("", alias="sameSite")
    secure: bool = False

    @field_validator("max_age", mode="before")
    @classmethod
    def _zero_is_a_day(cls, value: Any) -> Any:
        # The CRD types maxAge as a number; Flagger's Go field is an int and 0 means the default.
        if value in (0, None):
            return 86400  # Flagger: unset or 0
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("maxAge must be a whole number of seconds")
        return int(value)


class CanaryAnalysis(_Model):
    interval: str = "1m"
    iterations: int = 0
    threshold: int = 0
    max_weight: int | None = Field(None, alias="maxWeight")
    step_weight: int | None = Field(None, alias="stepWeight")
    step_weights: list[int] = Field(default_factory=list, alias="stepWeights")
    step_weight_promotion: int | None = Field(None, alias="stepWeightPromotion")
    mirror: bool = False
    mirror_weight: int | None = Field(None, alias="mirrorWeight")
    canary_ready_threshold: float | None = Field(None, alias="canaryReadyThreshold")
    primary_ready_threshold: float | None = Field(None, alias="primaryReadyThreshold")
    match: list[dict[str, Any]] = Field(default_factory=list)
    session_affinity: SessionAffinity | None = Field(None, alias="sessionAffinity")
    metrics: list[CanaryMetric] = Field(default_factory=list)
    webhooks: list[CanaryWebhook] = Field(default_factory=list)
    alerts: list[CanaryAlert] = Field(default_factory=list)

    @field_validator("interval")
    @classmethod
    def _interval_is_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def interval_seconds(self) -> float:
        return parse_duration(self.interval)


class CanaryService(_Model):
    name: str | None = None
    port: int
    port_name: str = Field("http", alias="portName")
    target_port: int | str | None = Field(None, alias="targetPort")
    port_discovery: bool = Field(False, alias="portDiscovery")
    app_protocol: str | None = Field(None, alias="appProtocol")
    timeout: str | None = None
    hosts: list[str] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)
    match: list[dict[str, Any]] = Field(default_factory=list)
    rewrite: dict[str, Any] | None = None
    retries: dict[str, Any] | None = None
    headers: dict[str, Any] | None = None
    cors_policy: dict[str, Any] | None = Field(None, alias="corsPolicy")
    traffic_policy: dict[str, Any] | None = Field(None, alias="trafficPolicy")
    apex: dict[str, Any] | None = None
    primary: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    # Gateway API: the Gateways the generated HTTPRoute attaches to (its `parentRefs`).
    gateway_refs: list[dict[str, Any]] = Field(default_factory=list, alias="gatewayRefs")
    # App Mesh: the virtual services (names or ARNs) the VirtualNodes may call.
    backends: list[str] = Field(default_factory=list)
    # Gateway API: Gateway API `HTTPRequestMirrorFilter`s added to every rule (Flagger's makeFilters).
    mirror: list[dict[str, Any]] = Field(default_factory=list)


class CanarySpec(_Model):
    provider: str | None = None
    metrics_server: str | None = Field(None, alias="metricsServer")
    progress_deadline_seconds: int = Field(600, alias="progressDeadlineSeconds")
    target_ref: TargetRef = Field(alias="targetRef")
    autoscaler_ref: TargetRef | None = Field(None, alias="autoscalerRef")
    # NGINX: the user's Ingress that gitcanary clones into `<ingress>-canary`.
    ingress_ref: TargetRef | None = Field(None, alias="ingressRef")
    # APISIX: the user's ApisixRoute that gitcanary copies into `<route>-<svc>-canary`.
    route_ref: TargetRef | None = Field(None, alias="routeRef")
    service: CanaryService
    skip_analysis: bool = Field(False, alias="skipAnalysis")
    suspend: bool = False
    analysis: CanaryAnalysis = Field(default_factory=CanaryAnalysis)


class _Object(_Model):
    """What every Flagger kind has: type, metadata, and a `namespace/name` key."""

    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: ObjectMeta

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    @property
    def key(self) -> str:
        """`namespace/name`, the way gitcanary names an object everywhere (CLI, trailers, status)."""
        return f"{self.namespace}/{self.name}"


class Canary(_Object):
    spec: CanarySpec

    @property
    def service_name(self) -> str:
        return self.spec.service.name or self.spec.target_ref.name

    @property
    def provider(self) -> str:
        return self.spec.provider or "istio"


class MetricTemplateProvider(_Model):
    type: str = "prometheus"
    address: str | None = None
    headers: dict[str, Any] | None = None
    secret_ref: CrossNamespaceRef | None = Field(None, alias="secretRef")
    insecure_skip_verify: bool = Field(False, alias="insecureSkipVerify")
    region: str | None = None  # cloudwatch


class MetricTemplateSpec(_Model):
    provider: MetricTemplateProvider = Field(default_factory=MetricTemplateProvider)
    query: str


class MetricTemplate(_Object):
    spec: MetricTemplateSpec


class AlertProviderSpec(_Model):
    type: str
    channel: str | None = None
    username: str | None = None
    address: str | None = None
    proxy: str | None = None
    secret_ref: CrossNamespaceRef | None = Field(None, alias="secretRef")


class AlertProvider(_Object):
    """Flagger's AlertProvider: where a canary's `analysis.alerts[]` send their notifications."""

    spec: AlertProviderSpec
