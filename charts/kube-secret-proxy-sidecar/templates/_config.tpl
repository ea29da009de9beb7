{{- /*
The sidecar's settings: the caller's values merged over these defaults, then
checked. Every other template here takes the same argument,
  (dict "context" $ "sidecar" .Values.sidecar)
reads the merged settings through this template and fails with one message
naming the value to fix.
*/ -}}

{{- define "kube-secret-proxy-sidecar.defaults" -}}
# Base name of the Role, RoleBinding and bearer-token Secret (default: the release name).
name: ""
serviceAccount:
  # The pod's ServiceAccount, bound to the Role (default: name).
  name: ""
  # Annotations on the ServiceAccount the serviceAccount template renders.
  annotations: {}
# Secrets to serve, each [namespace/]name[?optional] (--secret). The Role grants exactly these.
secrets: []
# Dynamic secrets (--allow): also serve secrets matching namespace/pattern* on demand.
dynamic:
  # Patterns, each namespace/pattern (e.g. team-a/db-*). Needs namespaceWideSecretRead.
  allow: []
  # RBAC has no wildcards: --allow needs get, list, watch on EVERY secret of each pattern's
  # namespace, and the sidecar becomes the only guard. Nothing is granted unless this is true.
  namespaceWideSecretRead: false
# watch (Role: get, list, watch), poll (Role: get) or auto (Role: get, list, watch; polls if watch is denied).
mode: watch
# true: a native sidecar (an init container with restartPolicy: Always, Kubernetes >= 1.29): the
# app starts once the secrets are loaded and Jobs finish. false: a plain container.
native: true
containerName: kube-secret-proxy
image:
  repository: kube-secret-proxy
  # Default: the sidecar version these templates were written for.
  tag: "0.1.0"
  # sha256:... pins the image; wins over tag.
  digest: ""
  pullPolicy: IfNotPresent
# The secrets API. Keep it on loopback: every container in the pod shares it, nothing outside does.
listen: 127.0.0.1:8642
# /metrics, /readyz and /livez listen on the pod IP at this port, for the kubelet's probes and Prometheus.
metricsPort: 9642
# Overrides the metrics address (default $(POD_IP):metricsPort), e.g. "[::]:9642" on IPv6-only pods.
metricsListen: ""
logLevel: info
# More flags, e.g. --stale-after=5m (see kube-secret-proxy --help).
extraArgs: []
# More env vars (KSP_* settings or anything else), as in a container spec.
extraEnv: []
# Requests and limits; none by default.
resources: {}
securityContext:
  runAsNonRoot: true
  # The image's user (the Node base image's "node").
  runAsUser: 1000
  runAsGroup: 1000
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
# Probes on the metrics port; the templates add httpGet. The startup probe holds the app back
# until /readyz answers 200 (every non-optional secret loaded).
startupProbe:
  periodSeconds: 1
  timeoutSeconds: 1
  failureThreshold: 300
readinessProbe:
  periodSeconds: 10
  timeoutSeconds: 1
  failureThreshold: 3
livenessProbe:
  periodSeconds: 10
  timeoutSeconds: 1
  failureThreshold: 3
# The projected ServiceAccount token, mounted only into the sidecar.
serviceAccountToken:
  expirationSeconds: 3600
  # Empty: the API server's default audience.
  audience: ""
# A bearer token the app must send (--auth-token-file), mounted into the app and the sidecar.
authToken:
  enabled: false
  # A Secret you manage; empty: the authTokenSecret template generates one, kept across upgrades.
  existingSecret: ""
  key: token
  mountPath: /var/run/secrets/kube-secret-proxy
# Extra labels on everything these templates render.
labels: {}
{{- end -}}

{{- /* Deep merge of .over onto .base; a null or absent key keeps the default, lists replace. */ -}}
{{- define "kube-secret-proxy-sidecar.merge" -}}
{{- $out := deepCopy .base -}}
{{- range $key, $value := .over -}}
{{- if and (kindIs "map" $value) (kindIs "map" (get $out $key)) -}}
{{- $_ := set $out $key (include "kube-secret-proxy-sidecar.merge" (dict "base" (get $out $key) "over" $value) | fromYaml) -}}
{{- else if not (kindIs "invalid" $value) -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{- /* The merged, checked settings as YAML; read with `include ... | fromYaml`. */ -}}
{{- define "kube-secret-proxy-sidecar.config" -}}
{{- if not (and (kindIs "map" .) (hasKey . "context")) -}}
{{- fail "kube-secret-proxy-sidecar: call its templates with (dict \"context\" $ \"sidecar\" .Values.sidecar)" -}}
{{- end -}}
{{- $c := include "kube-secret-proxy-sidecar.merge" (dict "base" (include "kube-secret-proxy-sidecar.defaults" . | fromYaml) "over" (.sidecar | default dict)) | fromYaml -}}
{{- if not $c.name -}}{{- $_ := set $c "name" (.context.Release.Name | trunc 40 | trimSuffix "-") -}}{{- end -}}
{{- if not $c.serviceAccount.name -}}{{- $_ := set $c.serviceAccount "name" $c.name -}}{{- end -}}
{{- if not $c.secrets -}}
{{- fail "kube-secret-proxy-sidecar: sidecar.secrets is empty: list the secrets to serve, e.g. secrets: [db, other-namespace/api?optional]" -}}
{{- end -}}
{{- range $c.secrets -}}
{{- if not (regexMatch "^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/)?[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?(\\?optional)?$" (toString .)) -}}
{{- fail (printf "kube-secret-proxy-sidecar: sidecar.secrets entry %q is not [namespace/]name[?optional] with Kubernetes names" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- if not (has $c.mode (list "watch" "poll" "auto")) -}}
{{- fail (printf "kube-secret-proxy-sidecar: sidecar.mode %q is not watch, poll or auto" (toString $c.mode)) -}}
{{- end -}}
{{- range $c.extraArgs -}}
{{- if regexMatch "^--allow(=|$)" (toString .) -}}
{{- fail "kube-secret-proxy-sidecar: sidecar.extraArgs has --allow: use sidecar.dynamic.allow, which renders the namespace-wide Role it needs" -}}
{{- end -}}
{{- end -}}
{{- range $c.dynamic.allow -}}
{{- if not (regexMatch "^[a-z0-9-]+/[a-z0-9.*-]+$" (toString .)) -}}
{{- fail (printf "kube-secret-proxy-sidecar: sidecar.dynamic.allow entry %q is not namespace/pattern, e.g. team-a/db-*" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- if and $c.dynamic.allow (not $c.dynamic.namespaceWideSecretRead) -}}
{{- fail "kube-secret-proxy-sidecar: sidecar.dynamic.allow needs sidecar.dynamic.namespaceWideSecretRead=true: RBAC has no wildcards, so the sidecar must be allowed to get, list and watch every secret in those namespaces and becomes the only guard" -}}
{{- end -}}
{{- toYaml $c -}}
{{- end -}}

{{- /* The secrets by namespace, without ?optional: {namespace: [names]} as YAML. */ -}}
{{- define "kube-secret-proxy-sidecar.secretsByNamespace" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- $byNamespace := dict -}}
{{- range $c.secrets -}}
{{- $ref := regexReplaceAll "\\?optional$" (toString .) "" -}}
{{- $namespace := $.context.Release.Namespace -}}
{{- $name := $ref -}}
{{- if contains "/" $ref -}}
{{- $namespace = first (splitList "/" $ref) -}}
{{- $name = last (splitList "/" $ref) -}}
{{- end -}}
{{- $_ := set $byNamespace $namespace (append (get $byNamespace $namespace | default list) $name | uniq | sortAlpha) -}}
{{- end -}}
{{- toYaml $byNamespace -}}
{{- end -}}

{{- /* Labels on every object: the caller's chart, the release, the component. */ -}}
{{- define "kube-secret-proxy-sidecar.labels" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
helm.sh/chart: {{ printf "%s-%s" .context.Chart.Name .context.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/component: secret-proxy
app.kubernetes.io/part-of: kube-secret-proxy
{{- with $c.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
