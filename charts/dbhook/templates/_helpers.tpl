{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "dbhook.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects; also the Service name the serving certificate is for.
*/}}
{{- define "dbhook.fullname" -}}
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

{{- define "dbhook.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods; never change them after the first install. */}}
{{- define "dbhook.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dbhook.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dbhook.labels" -}}
helm.sh/chart: {{ include "dbhook.chart" . }}
{{ include "dbhook.selectorLabels" . }}
app.kubernetes.io/version: {{ (include "dbhook.imageTag" .) | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: dbhook
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "dbhook.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dbhook.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dbhook.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{- define "dbhook.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "dbhook.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Name of the Secret holding tls.crt/tls.key (and ca.crt). */}}
{{- define "dbhook.tlsSecretName" -}}
{{- if eq .Values.certificates.mode "secret" }}
{{- required "certificates.secretName is required when certificates.mode=secret" .Values.certificates.secretName }}
{{- else }}
{{- default (printf "%s-tls" (include "dbhook.fullname" .)) .Values.certificates.secretName }}
{{- end }}
{{- end }}

{{/* DNS names the API server may use for the Service; the first is the one it uses. */}}
{{- define "dbhook.serviceDNSNames" -}}
{{- $svc := include "dbhook.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) $svc (printf "%s.%s" $svc $ns) | toJson }}
{{- end }}

{{/*
The policy document as rendered into the ConfigMap: .Values.policy with the `mode` shortcut
applied.
*/}}
{{- define "dbhook.policy" -}}
{{- $policy := deepCopy (default dict .Values.policy) }}
{{- if .Values.mode }}
{{- $_ := set $policy "mode" .Values.mode }}
{{- end }}
{{- /* apiVersion and kind first, for the human reading the ConfigMap. */}}
{{- with pick $policy "apiVersion" "kind" }}
{{- toYaml . }}
{{ end }}
{{- toYaml (omit $policy "apiVersion" "kind") }}
{{- end }}

{{/*
What the running pods must be restarted for: the certificate source (mode and Secret name).
The policy is deliberately not part of it (the server hot-reloads the ConfigMap), nor are the
certificate bytes (the server reloads the Secret's files when they change).
*/}}
{{- define "dbhook.certificatesChecksum" -}}
{{- $c := .Values.certificates }}
{{- dict "mode" $c.mode "secretName" (include "dbhook.tlsSecretName" .) | toJson | sha256sum }}
{{- end }}

{{/*
The webhooks' namespaceSelector: never kube-system, never dbhook's own namespace (so dbhook can
always be restarted), and never the namespaces the policy excludes (dbhook would allow them
untouched anyway; leaving them out at the API server also keeps them out of an outage).
*/}}
{{- define "dbhook.namespaceSelector" -}}
{{- $excluded := list "kube-system" .Release.Namespace }}
{{- range (default list (default dict .Values.policy).excludeNamespaces) }}
{{- $excluded = append $excluded . }}
{{- end -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- range uniq $excluded }}
      - {{ . | quote }}
      {{- end }}
  {{- with .Values.webhook.namespaceSelector }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{- define "dbhook.failurePolicy" -}}
{{- $root := index . 0 }}
{{- $hook := index . 1 }}
{{- default $root.Values.webhook.failurePolicy $hook.failurePolicy }}
{{- end }}

{{/* Workload resources of README.md, "Labels and annotations", for the mutating and the workload validating webhook. */}}
{{- define "dbhook.workloadRules" -}}
- operations: [CREATE, UPDATE]
  apiGroups: [apps]
  apiVersions: [v1]
  resources: [deployments, statefulsets]
  scope: Namespaced
- operations: [CREATE, UPDATE]
  apiGroups: [batch]
  apiVersions: [v1]
  resources: [jobs, cronjobs]
  scope: Namespaced
- operations: [CREATE, UPDATE]
  apiGroups: [argoproj.io]
  apiVersions: [v1alpha1]
  resources: [rollouts]
  scope: Namespaced
{{- end }}

{{/* Fields every webhook shares; called with dict root, hook (its values), path, caBundle. */}}
{{- define "dbhook.webhookCommon" -}}
{{- $root := .root -}}
admissionReviewVersions: [v1]
sideEffects: None
matchPolicy: Equivalent
timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}
failurePolicy: {{ include "dbhook.failurePolicy" (list $root .hook) }}
namespaceSelector:
  {{- include "dbhook.namespaceSelector" $root | nindent 2 }}
clientConfig:
  service:
    name: {{ include "dbhook.fullname" $root }}
    namespace: {{ $root.Release.Namespace }}
    path: {{ .path }}
    port: {{ $root.Values.service.port }}
  {{- with .caBundle }}
  caBundle: {{ . }}
  {{- end }}
{{- include "dbhook.matchConditions" $root }}
{{- end }}
{{- define "dbhook.webhookMetadata" -}}
metadata:
  name: {{ include "dbhook.fullname" . }}
  labels:
    {{- include "dbhook.labels" . | nindent 4 }}
  {{- if or (eq .Values.certificates.mode "certManager") .Values.webhook.annotations }}
  annotations:
    {{- if eq .Values.certificates.mode "certManager" }}
    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "dbhook.fullname" . }}-tls
    {{- end }}
    {{- with .Values.webhook.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end }}

{{/* dbhook's own deadline for one review: a second below the API server's webhook timeout. */}}
{{- define "dbhook.requestTimeout" -}}
{{- max 1 (sub (int .Values.webhook.timeoutSeconds) 1) }}
{{- end }}

{{/* The preStop sleep in seconds, or 0: only where the kubelet has the sleep action (1.30+). */}}
{{- define "dbhook.preStopSleep" -}}
{{- if and (not .Values.lifecycle) (gt (int .Values.preStopSleepSeconds) 0) (semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version) }}
{{- int .Values.preStopSleepSeconds }}
{{- else }}
{{- 0 }}
{{- end }}
{{- end }}

{{/* Flags the chart renders for `dbhook serve`; extraArgs must not repeat them. */}}
{{- define "dbhook.chartFlags" -}}
{{- list "--addr" "--admin-addr" "--tls-cert" "--tls-key" "--policy" "--log-format" "--shutdown-timeout" "--request-timeout" "--metrics-auth" "--admin-tls" | toJson }}
{{- end }}

{{/* Combinations of values the schema cannot express; each fails the render with a reason. */}}
{{- define "dbhook.validateValues" -}}
{{- $grace := int .Values.terminationGracePeriodSeconds }}
{{- $needed := add (int .Values.shutdownTimeoutSeconds) (int (include "dbhook.preStopSleep" .)) }}
{{- if le $grace $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed shutdownTimeoutSeconds + the preStop sleep (%d), or the kubelet kills dbhook before it has drained" $grace $needed) }}
{{- end }}
{{- $flags := include "dbhook.chartFlags" . | fromJsonArray }}
{{- range .Values.extraArgs }}
{{- $flag := regexReplaceAll "=.*$" . "" }}
{{- if has $flag $flags }}
{{- fail (printf "extraArgs: %s is set by the chart (flags: %s); use the chart's value for it instead" $flag (join ", " $flags)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* A probe from values; with admin.tls an httpGet without a scheme gets HTTPS. */}}
{{- define "dbhook.probe" -}}
{{- $root := index . 0 }}
{{- $probe := deepCopy (index . 1) }}
{{- if and $root.Values.admin.tls $probe.httpGet (not $probe.httpGet.scheme) }}
{{- $_ := set $probe.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- toYaml $probe }}
{{- end }}
