{{- /*
The objects the sidecar needs: its ServiceAccount, a Role per namespace of the
listed secrets with resourceNames = exactly those secrets (verbs get, list,
watch; get alone in poll mode) bound to that ServiceAccount, and the generated
bearer-token Secret.
*/ -}}

{{- define "kube-secret-proxy-sidecar.serviceAccount" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ $c.serviceAccount.name }}
  namespace: {{ .context.Release.Namespace }}
  labels:
    {{- include "kube-secret-proxy-sidecar.labels" . | nindent 4 }}
  {{- with $c.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
# Pods mount a projected token into the sidecar only; nothing else gets one.
automountServiceAccountToken: false
{{- end -}}

{{- /* The verbs the mode needs: watch and auto get, list, watch; poll get. */ -}}
{{- define "kube-secret-proxy-sidecar.verbs" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- if eq $c.mode "poll" -}}
[get]
{{- else -}}
[get, list, watch]
{{- end -}}
{{- end -}}

{{- define "kube-secret-proxy-sidecar.rbac" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- include "kube-secret-proxy-sidecar.dynamicRbac" . -}}
{{- $byNamespace := include "kube-secret-proxy-sidecar.secretsByNamespace" . | fromYaml -}}
{{- range $namespace := keys $byNamespace | sortAlpha }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $c.name }}-secret-reader
  namespace: {{ $namespace }}
  labels:
    {{- include "kube-secret-proxy-sidecar.labels" $ | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: [secrets]
    resourceNames:
      {{- toYaml (get $byNamespace $namespace) | nindent 6 }}
    verbs: {{ include "kube-secret-proxy-sidecar.verbs" $ }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $c.name }}-secret-reader
  namespace: {{ $namespace }}
  labels:
    {{- include "kube-secret-proxy-sidecar.labels" $ | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $c.name }}-secret-reader
subjects:
  - kind: ServiceAccount
    name: {{ $c.serviceAccount.name }}
    namespace: {{ $.context.Release.Namespace }}
{{- end }}
{{- end -}}

{{- /*
Dynamic secrets: a separate Role per namespace of dynamic.allow, without
resourceNames (RBAC has no wildcards), rendered only when
dynamic.namespaceWideSecretRead is true (the config check fails otherwise).
*/ -}}
{{- define "kube-secret-proxy-sidecar.dynamicRbac" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- if and $c.dynamic.allow $c.dynamic.namespaceWideSecretRead -}}
{{- $namespaces := list -}}
{{- range $c.dynamic.allow -}}{{- $namespaces = append $namespaces (first (splitList "/" (toString .))) -}}{{- end -}}
{{- range $namespace := $namespaces | uniq | sortAlpha }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ $c.name }}-dynamic-secret-reader
  namespace: {{ $namespace }}
  labels:
    {{- include "kube-secret-proxy-sidecar.labels" $ | nindent 4 }}
  annotations:
    kube-secret-proxy/warning: every secret in this namespace; the sidecar's --allow patterns are the only guard
rules:
  - apiGroups: [""]
    resources: [secrets]
    verbs: {{ include "kube-secret-proxy-sidecar.verbs" $ }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ $c.name }}-dynamic-secret-reader
  namespace: {{ $namespace }}
  labels:
    {{- include "kube-secret-proxy-sidecar.labels" $ | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ $c.name }}-dynamic-secret-reader
subjects:
  - kind: ServiceAccount
    name: {{ $c.serviceAccount.name }}
    namespace: {{ $.context.Release.Namespace }}
{{- end }}
{{- end -}}
{{- end -}}

{{- define "kube-secret-proxy-sidecar.authTokenSecretName" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- $c.authToken.existingSecret | default (printf "%s-auth-token" $c.name) -}}
{{- end -}}

{{- /*
The bearer token the app sends to the sidecar: random, generated once and kept
across upgrades (lookup), rendered only when authToken.enabled without an
existingSecret.
*/ -}}
{{- define "kube-secret-proxy-sidecar.authTokenSecret" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- if and $c.authToken.enabled (not $c.authToken.existingSecret) -}}
{{- $name := include "kube-secret-proxy-sidecar.authTokenSecretName" . -}}
{{- $existing := lookup "v1" "Secret" .context.Release.Namespace $name -}}
{{- $token := "" -}}
{{- if and $existing (hasKey ($existing.data | default dict) $c.authToken.key) -}}
{{- $token = index $existing.data $c.authToken.key -}}
{{- else -}}
{{- $token = randAlphaNum 48 | b64enc -}}
{{- end -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ $name }}
  namespace: {{ .context.Release.Namespace }}
  labels:
    {{- include "kube-secret-proxy-sidecar.labels" . | nindent 4 }}
type: Opaque
data:
  {{ $c.authToken.key }}: {{ $token | quote }}
{{- end -}}
{{- end -}}
