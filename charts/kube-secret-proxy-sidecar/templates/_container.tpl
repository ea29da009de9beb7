{{- /*
The sidecar container, as one item of a containers or initContainers list.
It alone mounts the projected ServiceAccount token; its metrics port listens on
the pod IP (Downward API) for the kubelet and Prometheus, its secrets API on
loopback. Place it with initContainers (native: true) or containers (native:
false), or call this directly and place it yourself.
*/ -}}
{{- define "kube-secret-proxy-sidecar.container" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
- name: {{ $c.containerName }}
  image: {{ include "kube-secret-proxy-sidecar.image" . | quote }}
  imagePullPolicy: {{ $c.image.pullPolicy }}
  {{- if $c.native }}
  # A native sidecar: started before the app containers, stopped after them, and it does not
  # keep a Job's pod running.
  restartPolicy: Always
  {{- end }}
  args:
    {{- range $c.secrets }}
    - --secret={{ . }}
    {{- end }}
    - --mode={{ $c.mode }}
    {{- range $c.dynamic.allow }}
    - --allow={{ . }}
    {{- end }}
    {{- if $c.authToken.enabled }}
    - --auth-token-file={{ $c.authToken.mountPath }}/token
    {{- end }}
    {{- with $c.extraArgs }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  env:
    - name: POD_IP
      valueFrom:
        fieldRef:
          fieldPath: status.podIP
    - name: KSP_LISTEN
      value: {{ $c.listen | quote }}
    - name: KSP_METRICS_LISTEN
      value: {{ $c.metricsListen | default (printf "$(POD_IP):%v" $c.metricsPort) | quote }}
    - name: KSP_LOG_LEVEL
      value: {{ $c.logLevel | quote }}
    {{- with $c.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: ksp-metrics
      containerPort: {{ $c.metricsPort }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /readyz
      port: ksp-metrics
    {{- toYaml $c.startupProbe | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: ksp-metrics
    {{- toYaml $c.readinessProbe | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /livez
      port: ksp-metrics
    {{- toYaml $c.livenessProbe | nindent 4 }}
  {{- with $c.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $c.securityContext | nindent 4 }}
  volumeMounts:
    - name: kube-secret-proxy-sa-token
      mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      readOnly: true
    {{- if $c.authToken.enabled }}
    - name: kube-secret-proxy-auth-token
      mountPath: {{ $c.authToken.mountPath }}
      readOnly: true
    {{- end }}
{{- end -}}

{{- /* The container for an initContainers list when native (the default), else nothing. */ -}}
{{- define "kube-secret-proxy-sidecar.initContainers" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- if $c.native -}}
{{ include "kube-secret-proxy-sidecar.container" . }}
{{- end -}}
{{- end -}}

{{- /* The container for a containers list when not native, else nothing. */ -}}
{{- define "kube-secret-proxy-sidecar.containers" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- if not $c.native -}}
{{ include "kube-secret-proxy-sidecar.container" . }}
{{- end -}}
{{- end -}}

{{- define "kube-secret-proxy-sidecar.image" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- if $c.image.digest -}}
{{- printf "%s@%s" $c.image.repository $c.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $c.image.repository (toString $c.image.tag) -}}
{{- end -}}
{{- end -}}

{{- /*
The pod's volumes (list items): the projected ServiceAccount token with the
cluster CA and the namespace, laid out like the automounted one; and the bearer
token Secret when authToken.enabled.
*/ -}}
{{- define "kube-secret-proxy-sidecar.volumes" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
- name: kube-secret-proxy-sa-token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: {{ $c.serviceAccountToken.expirationSeconds | int64 }}
          {{- with $c.serviceAccountToken.audience }}
          audience: {{ . | quote }}
          {{- end }}
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                apiVersion: v1
                fieldPath: metadata.namespace
{{- if $c.authToken.enabled }}
- name: kube-secret-proxy-auth-token
  secret:
    secretName: {{ include "kube-secret-proxy-sidecar.authTokenSecretName" . }}
    defaultMode: 292 # 0444 (decimal: YAML 1.1 and 1.2 readers agree)
    items:
      - key: {{ $c.authToken.key }}
        path: token
{{- end }}
{{- end -}}

{{- /* The app container's volumeMounts (list items): the bearer token when enabled, never the ServiceAccount token. */ -}}
{{- define "kube-secret-proxy-sidecar.appVolumeMounts" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
{{- if $c.authToken.enabled -}}
- name: kube-secret-proxy-auth-token
  mountPath: {{ $c.authToken.mountPath }}
  readOnly: true
{{- end -}}
{{- end -}}

{{- /* The app container's env (list items): where the sidecar listens and, when enabled, the bearer token file. */ -}}
{{- define "kube-secret-proxy-sidecar.appEnv" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
- name: KUBE_SECRET_PROXY_URL
  value: {{ hasPrefix "unix:" $c.listen | ternary $c.listen (printf "http://%s" $c.listen) | quote }}
{{- if $c.authToken.enabled }}
- name: KUBE_SECRET_PROXY_TOKEN_FILE
  value: {{ printf "%s/token" $c.authToken.mountPath | quote }}
{{- end }}
{{- end -}}

{{- /* Pod spec fields: the ServiceAccount, and no automounted token for any container. */ -}}
{{- define "kube-secret-proxy-sidecar.podServiceAccount" -}}
{{- $c := include "kube-secret-proxy-sidecar.config" . | fromYaml -}}
serviceAccountName: {{ $c.serviceAccount.name }}
automountServiceAccountToken: false
{{- end -}}
