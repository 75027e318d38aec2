{{/* Chart name. */}}
{{- define "orderflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource-name prefix. */}}
{{- define "orderflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "orderflow.labels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "orderflow.baseLabels" . }}
{{- end }}

{{/* The same without app.kubernetes.io/instance, for maps that add the selector labels. */}}
{{- define "orderflow.baseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/part-of: orderflow
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component; call with (dict "ctx" $ "component" "order-service"). */}}
{{- define "orderflow.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end }}

{{/* Component values key -> component name. */}}
{{- define "orderflow.components" -}}
orderService: order-service
inventoryService: inventory-service
paymentService: payment-service
sandboxGateway: sandbox-gateway
{{- end }}

{{/* Image of a component; call with (dict "ctx" $ "c" $componentValues). */}}
{{- define "orderflow.image" -}}
{{- printf "%s/%s:%s" .ctx.Values.image.registry .c.imageName (default .ctx.Chart.AppVersion .ctx.Values.image.tag) }}
{{- end }}

{{/* NATS name of the bundled NATS chart (mirrors its nats.fullname). */}}
{{- define "orderflow.natsFullname" -}}
{{- if .Values.nats.fullnameOverride }}
{{- .Values.nats.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains "nats" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-nats" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* NATS_URL. */}}
{{- define "orderflow.natsUrl" -}}
{{- if .Values.nats.url }}
{{- .Values.nats.url }}
{{- else if .Values.nats.enabled }}
{{- printf "nats://%s:4222" (include "orderflow.natsFullname" .) }}
{{- else }}
{{- fail "nats.url is required when nats.enabled is false (external-NATS mode)" }}
{{- end }}
{{- end }}

{{/* OTEL_EXPORTER_OTLP_ENDPOINT ("" = tracing off). */}}
{{- define "orderflow.otlpEndpoint" -}}
{{- if .Values.otel.endpoint }}
{{- .Values.otel.endpoint }}
{{- else if .Values.jaeger.enabled }}
{{- printf "http://%s-jaeger:4318" (include "orderflow.fullname" .) }}
{{- end }}
{{- end }}

{{/* PAYMENT_GATEWAY_URL. */}}
{{- define "orderflow.gatewayUrl" -}}
{{- if .Values.paymentService.gatewayUrl }}
{{- .Values.paymentService.gatewayUrl }}
{{- else if .Values.sandboxGateway.enabled }}
{{- printf "http://%s-sandbox-gateway:%v" (include "orderflow.fullname" .) .Values.sandboxGateway.port }}
{{- else }}
{{- fail "paymentService.gatewayUrl is required unless sandboxGateway.enabled is true" }}
{{- end }}
{{- end }}

{{/* Name of the Secret with DATABASE_URL and NATS credentials. */}}
{{- define "orderflow.secretName" -}}
{{- printf "%s-secrets" (include "orderflow.fullname" .) }}
{{- end }}

{{/* The workloads with a database (the saga services): component -> database.services key. */}}
{{- define "orderflow.databaseKeys" -}}
order-service: orderService
inventory-service: inventoryService
payment-service: paymentService
{{- end }}

{{/*
Where one saga service reads DATABASE_URL, as a secretKeyRef body (name, key): its own database
(database.services.<key>.existingSecret, else the chart's "<fullname>-db-<component>" from its
url), else the shared one (database.existingSecret, else the chart's Secret from database.url).
Call with (dict "ctx" $ "component" "order-service").
*/}}
{{- define "orderflow.databaseSecretRef" -}}
{{- $key := index (include "orderflow.databaseKeys" .ctx | fromYaml) .component -}}
{{- $own := index .ctx.Values.database.services $key | default dict -}}
{{- if $own.existingSecret -}}
name: {{ $own.existingSecret }}
key: {{ $own.existingSecretKey | default "DATABASE_URL" }}
{{- else if $own.url -}}
name: {{ include "orderflow.databaseSecretName" (dict "ctx" .ctx "component" .component) }}
key: DATABASE_URL
{{- else if .ctx.Values.database.existingSecret -}}
name: {{ .ctx.Values.database.existingSecret }}
key: {{ .ctx.Values.database.existingSecretKey }}
{{- else if .ctx.Values.database.url -}}
name: {{ include "orderflow.secretName" .ctx }}
key: DATABASE_URL
{{- else -}}
{{- fail (printf "set database.url or database.existingSecret (the shared database), or database.services.%s.url or .existingSecret (%s's own database)" $key .component) -}}
{{- end -}}
{{- end }}

{{/* Secret the chart writes for a service's own database.url. (dict "ctx" $ "component" name) */}}
{{- define "orderflow.databaseSecretName" -}}
{{- printf "%s-db-%s" (include "orderflow.fullname" .ctx) .component -}}
{{- end }}

{{/* Workloads with their own NATS user in natsAuth.perService mode: component -> natsAuth.services key. */}}
{{- define "orderflow.natsAuthKeys" -}}
order-service: orderService
inventory-service: inventoryService
payment-service: paymentService
console: console
operator: operator
{{- end }}

{{/* Secret with NATS_USER / NATS_PASSWORD of one workload in per-service mode. (dict "ctx" $ "component" name) */}}
{{- define "orderflow.natsSecretName" -}}
{{- $key := index (include "orderflow.natsAuthKeys" .ctx | fromYaml) .component -}}
{{- $svc := index .ctx.Values.natsAuth.services $key -}}
{{- if $svc.existingSecret -}}
{{- $svc.existingSecret -}}
{{- else -}}
{{- printf "%s-nats-%s" (include "orderflow.fullname" .ctx) .component -}}
{{- end -}}
{{- end }}

{{/* Subject / stream name with the subjectNamespace prefix. */}}
{{- define "orderflow.subject" -}}
{{- if .ctx.Values.subjectNamespace }}{{ printf "%s.%s" .ctx.Values.subjectNamespace .s }}{{ else }}{{ .s }}{{ end }}
{{- end }}
{{- define "orderflow.stream" -}}
{{- if .ctx.Values.subjectNamespace }}{{ printf "%s_%s" (upper .ctx.Values.subjectNamespace) .s }}{{ else }}{{ .s }}{{ end }}
{{- end }}

{{/* Refuse a grace period shorter than preStop sleep + drain timeout. */}}
{{- define "orderflow.checkGrace" -}}
{{- $need := add .Values.shutdown.preStopSleepSeconds (div .Values.shutdown.timeoutMs 1000) }}
{{- if lt (int .Values.shutdown.terminationGracePeriodSeconds) (int $need) }}
{{- fail (printf "shutdown.terminationGracePeriodSeconds (%v) must be >= preStopSleepSeconds + timeoutMs/1000 (%v)" .Values.shutdown.terminationGracePeriodSeconds $need) }}
{{- end }}
{{- end }}
