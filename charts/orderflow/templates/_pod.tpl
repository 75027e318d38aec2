{{/*
Shared pod spec pieces. "orderflow.commonEnv": env entries of a service (secrets by reference;
DATABASE_URL and DATABASE_SCHEMA only for the saga services, which have a database). Call with (dict "ctx" $ "component" "order-service" "port" 3001).
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
{{- if hasKey (include "orderflow.databaseKeys" $ctx | fromYaml) .component }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "orderflow.databaseSecretRef" (dict "ctx" $ctx "component" .component) | nindent 6 }}
- name: DATABASE_SCHEMA
  value: {{ .component | replace "-" "_" | quote }}
{{- end }}
{{- with include "orderflow.natsUserEnv" (dict "ctx" $ctx "component" .component) }}
{{ . }}
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

{{/*
NATS_USER / NATS_PASSWORD of one workload, both read from a Secret with those two keys.
Shared mode (natsAuth.perService false): natsAuth.existingSecret, else the chart's Secret when
natsAuth.user is set, else nothing. Per-service mode: the workload's own Secret
(natsAuth.services.<key>.existingSecret, else "<fullname>-nats-<component>"); workloads without
an entry in orderflow.natsAuthKeys (the sandbox gateway, which does not use NATS) get nothing.
Call with (dict "ctx" $ "component" "order-service").
*/}}
{{- define "orderflow.natsUserEnv" -}}
{{- $ctx := .ctx -}}
{{- $secret := "" -}}
{{- if $ctx.Values.natsAuth.perService -}}
{{- if hasKey (include "orderflow.natsAuthKeys" $ctx | fromYaml) .component -}}
{{- $secret = include "orderflow.natsSecretName" (dict "ctx" $ctx "component" .component) -}}
{{- end -}}
{{- else if $ctx.Values.natsAuth.existingSecret -}}
{{- $secret = $ctx.Values.natsAuth.existingSecret -}}
{{- else if $ctx.Values.natsAuth.user -}}
{{- $secret = include "orderflow.secretName" $ctx -}}
{{- end -}}
{{- if $secret -}}
- name: NATS_USER
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: NATS_USER
- name: NATS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: NATS_PASSWORD
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
