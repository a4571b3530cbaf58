{{/*
Names. Every helper below takes the root context (.) unless it says otherwise.
*/}}
{{- define "fl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fl.fullname" -}}
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

{{- define "fl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every resource. */}}
{{- define "fl.labels" -}}
helm.sh/chart: {{ include "fl.chart" . }}
app.kubernetes.io/name: {{ include "fl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: fl-platform
{{- end -}}

{{/* Selector labels; call with (dict "root" $ "component" "gateway"). */}}
{{- define "fl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fl.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fl.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fl.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret with the credentials: existingSecret or the chart's own. */}}
{{- define "fl.secretName" -}}
{{- if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else -}}
{{- printf "%s-credentials" (include "fl.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Image reference; call with (dict "root" $ "image" .Values.gateway.image). */}}
{{- define "fl.image" -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s%s:%s" .root.Values.image.registry .image.repository $tag -}}
{{- end -}}

{{/* Whether the server side (gateway or coordinator) is deployed. */}}
{{- define "fl.serverEnabled" -}}
{{- if or .Values.gateway.enabled .Values.coordinator.enabled -}}true{{- end -}}
{{- end -}}

{{/* Whether the chart creates the artifacts claim of the local registry. */}}
{{- define "fl.artifactsClaimName" -}}
{{- if .Values.registry.artifacts.existingClaim -}}
{{- .Values.registry.artifacts.existingClaim -}}
{{- else -}}
{{- printf "%s-artifacts" (include "fl.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
Checks that stop the rendering with a message naming the value, instead of
deploying something that cannot work (the predecessor's chart silently fell
back to SQLite).
*/}}
{{- define "fl.validate" -}}
{{- if not .Values.existingSecret -}}
{{- $needsBroker := include "fl.serverEnabled" . -}}
{{- range .Values.edgeWorker.sites -}}
{{- if not .existingSecret -}}{{- $needsBroker = "true" -}}{{- end -}}
{{- end -}}
{{- if and $needsBroker (not .Values.rabbitmq.host) -}}
{{- fail "rabbitmq.host is required (or existingSecret with AMQP_URL): every app needs the broker" -}}
{{- end -}}
{{- if and (include "fl.serverEnabled" .) (not .Values.postgresql.host) -}}
{{- fail "postgresql.host is required for the gateway and the coordinator (or existingSecret with DATABASE_URL); there is no embedded database" -}}
{{- end -}}
{{- end -}}
{{- if not (has .Values.registry.backend (list "local" "mlflow")) -}}
{{- fail (printf "registry.backend must be local or mlflow, not %q" .Values.registry.backend) -}}
{{- end -}}
{{- if and (include "fl.serverEnabled" .) (eq .Values.registry.backend "mlflow") (not (or .Values.mlflow.trackingUri .Values.mlflow.url)) -}}
{{- fail "mlflow.trackingUri is required with registry.backend=mlflow" -}}
{{- end -}}
{{- if and .Values.gateway.enabled (eq .Values.gateway.auth.mode "oidc") (not (and .Values.gateway.auth.issuer .Values.gateway.auth.audience .Values.gateway.auth.jwksUrl)) -}}
{{- fail "gateway.auth.issuer, .audience and .jwksUrl are required with gateway.auth.mode=oidc (mode none switches authentication off)" -}}
{{- end -}}
{{- if not (has .Values.config.logFormat (list "json" "pretty")) -}}
{{- fail (printf "config.logFormat must be json or pretty, not %q" .Values.config.logFormat) -}}
{{- end -}}
{{- if not (has .Values.coordinator.kind (list "StatefulSet" "Deployment")) -}}
{{- fail (printf "coordinator.kind must be StatefulSet or Deployment, not %q" .Values.coordinator.kind) -}}
{{- end -}}
{{- if and (or .Values.coordinator.enabled .Values.edgeWorker.sites) (eq (int .Values.config.healthPort) 0) -}}
{{- fail "config.healthPort must not be 0: the probes of the coordinators and edge workers use it" -}}
{{- end -}}
{{- range $i, $entry := .Values.edgeWorker.sites -}}
{{- $site := mergeOverwrite (deepCopy $.Values.edgeWorker.siteDefaults) (deepCopy $entry) -}}
{{- if not (regexMatch "^[A-Za-z0-9_-]{1,64}$" (toString $site.name)) -}}
{{- fail (printf "edgeWorker.sites[%d].name must be 1-64 letters, digits, _ or - (got %q)" $i (toString $site.name)) -}}
{{- end -}}
{{- $sources := 0 -}}
{{- if $site.data.hostPath -}}{{- $sources = add1 $sources -}}{{- end -}}
{{- if $site.data.existingClaim -}}{{- $sources = add1 $sources -}}{{- end -}}
{{- if $site.data.persistentVolumeClaim.size -}}{{- $sources = add1 $sources -}}{{- end -}}
{{- if ne $sources 1 -}}
{{- fail (printf "edgeWorker.sites[%d] (%s): set exactly one of data.hostPath, data.existingClaim, data.persistentVolumeClaim.size" $i $site.name) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Pod annotations for Prometheus; call with (dict "root" $ "port" 8081). */}}
{{- define "fl.metricsAnnotations" -}}
{{- if .root.Values.metrics.podAnnotations -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end -}}
{{- end -}}

{{/* The /tmp emptyDir volume (the root file system is read-only). */}}
{{- define "fl.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- end -}}

{{/* Environment of the server side: credentials from the Secret. */}}
{{- define "fl.serverSecretEnv" -}}
- name: AMQP_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "fl.secretName" . }}
      key: AMQP_URL
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "fl.secretName" . }}
      key: DATABASE_URL
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "fl.secretName" . }}
      key: MLFLOW_TRACKING_USERNAME
      optional: true
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "fl.secretName" . }}
      key: MLFLOW_TRACKING_PASSWORD
      optional: true
- name: MLFLOW_TRACKING_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "fl.secretName" . }}
      key: MLFLOW_TRACKING_TOKEN
      optional: true
{{- end -}}

{{/* Volumes and mounts of the local registry's artifacts (server side). */}}
{{- define "fl.artifactsVolume" -}}
{{- if eq .Values.registry.backend "local" -}}
- name: artifacts
  persistentVolumeClaim:
    claimName: {{ include "fl.artifactsClaimName" . }}
{{- end -}}
{{- end -}}

{{- define "fl.artifactsMount" -}}
{{- if eq .Values.registry.backend "local" -}}
- name: artifacts
  mountPath: {{ .Values.registry.artifacts.mountPath }}
{{- end -}}
{{- end -}}

{{/* The broker's TLS files from rabbitmq.tlsSecret, in every pod that connects to it. */}}
{{- define "fl.amqpTlsVolume" -}}
{{- if .Values.rabbitmq.tlsSecret -}}
- name: amqp-tls
  secret:
    secretName: {{ .Values.rabbitmq.tlsSecret }}
{{- end -}}
{{- end -}}

{{- define "fl.amqpTlsMount" -}}
{{- if .Values.rabbitmq.tlsSecret -}}
- name: amqp-tls
  mountPath: {{ .Values.rabbitmq.tlsMountPath }}
  readOnly: true
{{- end -}}
{{- end -}}
