{{- /* The chart's name, or nameOverride. */ -}}
{{- define "kube-secret-proxy.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- /* <release>-<name> unless the release name already contains it, or fullnameOverride. */ -}}
{{- define "kube-secret-proxy.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "kube-secret-proxy.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "kube-secret-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-secret-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kube-secret-proxy.labels" -}}
helm.sh/chart: {{ include "kube-secret-proxy.chart" . }}
{{ include "kube-secret-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "kube-secret-proxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "kube-secret-proxy.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- /*
The argument of every library template: this release as context, and
.Values.sidecar with this chart's names and labels filled in.
Use as: $sidecar := dict "context" $ "sidecar" (include "kube-secret-proxy.sidecarValues" . | fromYaml)
*/ -}}
{{- define "kube-secret-proxy.sidecarValues" -}}
{{- $values := deepCopy (.Values.sidecar | default dict) -}}
{{- $_ := set $values "name" (include "kube-secret-proxy.fullname" .) -}}
{{- $_ := set $values "serviceAccount" (dict "name" (include "kube-secret-proxy.serviceAccountName" .) "annotations" (.Values.serviceAccount.annotations | default dict)) -}}
{{- $_ := set $values "labels" (merge (dict "app.kubernetes.io/name" (include "kube-secret-proxy.name" .) "app.kubernetes.io/version" .Chart.AppVersion) ($values.labels | default dict)) -}}
{{- toYaml $values -}}
{{- end -}}
