{{/* The objects' name: the release name when it says gitcanary, else <release>-gitcanary. */}}
{{- define "gitcanary.fullname" -}}
{{- if contains "gitcanary" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-gitcanary" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gitcanary.selectorLabels" -}}
app.kubernetes.io/name: gitcanary
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gitcanary.labels" -}}
{{ include "gitcanary.selectorLabels" . }}
app.kubernetes.io/part-of: gitcanary
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
