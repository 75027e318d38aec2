{{/*
Shared pod spec pieces. "orderflow.commonEnv": env entries every component gets (secrets by
reference). Call with (dict "ctx" $ "component" "order-service" "port" 3001).
*/}}
{{- define "orderflow.commonEnv" -}}
{{- $ctx := .ctx -}}
- name: PORT
  value: {{ .port | toString | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ .component | quote }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
{{- if $ctx.Values.database.existingSecret }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $ctx.Values.database.existingSecret }}
      key: {{ $ctx.Values.database.existingSecretKey }}
{{- else }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "orderflow.secretName" $ctx }}
      key: DATABASE_URL
{{- end }}
{{- if $ctx.Values.natsAuth.existingSecret }}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ $ctx.Values.natsAuth.existingSecret }}
      key: NATS_USER
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $ctx.Values.natsAuth.existingSecret }}
      key: NATS_PASSWORD
{{- else if $ctx.Values.natsAuth.user }}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ include "orderflow.secretName" $ctx }}
      key: NATS_USER
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "orderflow.secretName" $ctx }}
      key: NATS_PASSWORD
{{- end }}
{{- if $ctx.Values.natsAuth.credsSecret }}
- name: NATS_CREDS
  value: /var/run/secrets/orderflow/nats-creds/nats.creds
{{- end }}
{{- if $ctx.Values.natsAuth.tlsSecret }}
- name: NATS_TLS_CA
  value: /var/run/secrets/orderflow/nats-tls/ca.crt
- name: NATS_TLS_CERT
  value: /var/run/secrets/orderflow/nats-tls/tls.crt
- name: NATS_TLS_KEY
  value: /var/run/secrets/orderflow/nats-tls/tls.key
{{- end }}
{{- end }}

{{/* Volumes: writable /tmp (read-only root fs) and the optional NATS credentials. */}}
{{- define "orderflow.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if .Values.natsAuth.credsSecret }}
- name: nats-creds
  secret:
    secretName: {{ .Values.natsAuth.credsSecret }}
{{- end }}
{{- if .Values.natsAuth.tlsSecret }}
- name: nats-tls
  secret:
    secretName: {{ .Values.natsAuth.tlsSecret }}
{{- end }}
{{- end }}

{{- define "orderflow.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.natsAuth.credsSecret }}
- name: nats-creds
  mountPath: /var/run/secrets/orderflow/nats-creds
  readOnly: true
{{- end }}
{{- if .Values.natsAuth.tlsSecret }}
- name: nats-tls
  mountPath: /var/run/secrets/orderflow/nats-tls
  readOnly: true
{{- end }}
{{- end }}

{{/* Probes on the named port "http". */}}
{{- define "orderflow.probes" -}}
startupProbe:
  httpGet: { path: /health, port: http }
  periodSeconds: {{ .Values.probes.startup.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.startup.failureThreshold }}
livenessProbe:
  httpGet: { path: /health, port: http }
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
readinessProbe:
  httpGet: { path: /ready, port: http }
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
{{- end }}

{{/* Pod annotations: Prometheus scrape hints + the component's own. (dict "ctx" $ "c" $c) */}}
{{- define "orderflow.podAnnotations" -}}
{{- if .ctx.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .c.port | toString | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .c.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Topology spread with the component's selector. (dict "ctx" $ "component" name) */}}
{{- define "orderflow.topologySpread" -}}
{{- $component := .component }}
{{- $ctx := .ctx }}
{{- range .ctx.Values.topologySpread }}
- maxSkew: {{ .maxSkew }}
  topologyKey: {{ .topologyKey }}
  whenUnsatisfiable: {{ .whenUnsatisfiable }}
  labelSelector:
    matchLabels:
      {{- include "orderflow.selectorLabels" (dict "ctx" $ctx "component" $component) | nindent 6 }}
{{- end }}
{{- end }}
