{{/*
Names, labels and the values every template shares.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "rabbitmq.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-<name>, or just <release> when the release name
already contains the chart name; fullnameOverride wins. 63 characters at most (DNS label).
*/}}
{{- define "rabbitmq.fullname" -}}
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

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "rabbitmq.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "rabbitmq.labels" -}}
helm.sh/chart: {{ include "rabbitmq.chart" . }}
{{ include "rabbitmq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jobworker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of a pod (dict "context" $ "component" NAME "client" BOOL): podLabels, then the chart's
labels with that component, and the client label when asked. Merged as maps so that a podLabels
key repeating one of the chart's never renders a duplicate key.
*/}}
{{- define "rabbitmq.podLabels" -}}
{{- $ := .context }}
{{- $labels := mustMergeOverwrite (dict) ($.Values.podLabels | default dict) (include "rabbitmq.labels" $ | fromYaml) (dict "app.kubernetes.io/component" .component) }}
{{- if .client }}
{{- $labels = mustMergeOverwrite $labels (include "rabbitmq.clientLabels" $ | fromYaml) }}
{{- end }}
{{- toYaml $labels }}
{{- end }}

{{/* Labels that select the RabbitMQ pod: they never change across upgrades. */}}
{{- define "rabbitmq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rabbitmq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/*
The label a client pod carries to pass the NetworkPolicy: key rabbitmq.clientLabelKey, value the
full name. Client charts (coarse-queue-job) compute the same pair for their pods.
*/}}
{{- define "rabbitmq.clientLabelKey" -}}
jobworker.github.io/rabbitmq-client
{{- end }}

{{- define "rabbitmq.clientLabels" -}}
{{ include "rabbitmq.clientLabelKey" . }}: {{ include "rabbitmq.fullname" . }}
{{- end }}

{{/* The ServiceAccount the pod runs as. */}}
{{- define "rabbitmq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rabbitmq.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest. */}}
{{- define "rabbitmq.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* The Secret holding the user name and password: ours, or auth.existingSecret. */}}
{{- define "rabbitmq.secretName" -}}
{{- default (include "rabbitmq.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/* The keys of the user name and of the password in that Secret. */}}
{{- define "rabbitmq.secretUsernameKey" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretUsernameKey }}
{{- else -}}
rabbitmq-username
{{- end }}
{{- end }}

{{- define "rabbitmq.secretPasswordKey" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretPasswordKey }}
{{- else -}}
rabbitmq-password
{{- end }}
{{- end }}

{{/*
A random value of the Secret we own, base64-encoded (dict "context" $ "key" KEY "length" N): the one
already stored under KEY in the release's Secret (lookup, so `helm upgrade` keeps it), else a new
random one. There is deliberately no value for a password in values.yaml: bring your own through
auth.existingSecret. `helm template` and `--dry-run` cannot look up, so they show new values on
every run.
*/}}
{{- define "rabbitmq.generatedB64" -}}
{{- $ := .context }}
{{- $existing := lookup "v1" "Secret" $.Release.Namespace (include "rabbitmq.fullname" $) }}
{{- $stored := "" }}
{{- if $existing }}
{{- $stored = index ($existing.data | default dict) .key | default "" }}
{{- end }}
{{- $stored | default (randAlphaNum (int .length) | b64enc) }}
{{- end }}

{{/*
The user, the password and the Erlang cookie, from the Secrets, as the variables rabbitmq-server
reads (the user and password only matter at the node's first boot, when it creates that user
instead of guest) and the CLI tools read (the cookie). Never plain values.
*/}}
{{- define "rabbitmq.secretEnv" -}}
- name: RABBITMQ_DEFAULT_USER
  valueFrom:
    secretKeyRef:
      name: {{ include "rabbitmq.secretName" . }}
      key: {{ include "rabbitmq.secretUsernameKey" . }}
- name: RABBITMQ_DEFAULT_PASS
  valueFrom:
    secretKeyRef:
      name: {{ include "rabbitmq.secretName" . }}
      key: {{ include "rabbitmq.secretPasswordKey" . }}
- name: RABBITMQ_ERLANG_COOKIE
  valueFrom:
    secretKeyRef:
      name: {{ include "rabbitmq.fullname" . }}
      key: erlang-cookie
{{- end }}

{{/*
Every check between values that the schema cannot express, gathered so that one `helm install`
reports all of them at once.
*/}}
{{- define "rabbitmq.validateValues" -}}
{{- $messages := list }}
{{- if and (eq (lower .Values.auth.username) "guest") (not .Values.auth.existingSecret) }}
{{- $messages = append $messages "auth.username must not be guest: the chart never creates the well-known guest user; pick another name" }}
{{- end }}
{{- if regexMatch "(?im)^\\s*(listeners\\.tcp\\.|default_(user|pass|vhost)\\s*=|default_user_tags\\.|loopback_users|consumer_timeout\\s*=|total_memory_available_override_value\\s*=|management\\.tcp\\.|log\\.(file|console)\\s*=)" .Values.config.extra }}
{{- $messages = append $messages "config.extra must not set listeners.tcp.*, default_user, default_pass, default_vhost, loopback_users, consumer_timeout, total_memory_available_override_value, management.tcp.*, log.file or log.console: the chart sets them from service.port, auth.*, config.consumerTimeoutSeconds, resources.limits.memory and management.*, and a password must never be in the ConfigMap" }}
{{- end }}
{{- if and .Values.management.enabled (eq (int .Values.management.port) (int .Values.service.port)) }}
{{- $messages = append $messages (printf "management.port (%v) must differ from service.port (%v)" .Values.management.port .Values.service.port) }}
{{- end }}
{{- if $messages }}
{{- fail (printf "\n\nVALUES VALIDATION:\n- %s" (join "\n- " $messages)) }}
{{- end }}
{{- end }}

{{/* The timing fields of a probe, from its values block. */}}
{{- define "rabbitmq.probeTimings" -}}
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}

{{/*
checkov annotations (checkov.io/skipN: ID=reason) for the checks this chart does not meet on
purpose, each only while the values make it true; dict "context" $ "test" BOOL.
*/}}
{{- define "rabbitmq.checkovSkips" -}}
{{- $ := .context }}
{{- $skips := list }}
{{- if not $.Values.image.digest }}
{{- $skips = append $skips "CKV_K8S_43=the image is referenced by its release tag; set image.digest to pin a digest" }}
{{- end }}
{{- if ne $.Values.image.pullPolicy "Always" }}
{{- $skips = append $skips "CKV_K8S_15=release tags do not move, so the node's copy is used (IfNotPresent); set image.pullPolicy to Always to change it" }}
{{- end }}
{{- $skips = append $skips "CKV_K8S_35=rabbitmq-server and its CLI tools read the user, password and Erlang cookie only from the environment; they come from secretKeyRefs, never plain values" }}
{{- if lt (int (default 0 $.Values.podSecurityContext.runAsUser)) 10000 }}
{{- $skips = append $skips "CKV_K8S_40=runs as the official image's own user rabbitmq (999); set podSecurityContext.runAsUser to change it" }}
{{- end }}
{{- if .test }}
{{- $skips = append $skips "CKV_K8S_8=a helm test pod runs one command and exits: nothing to probe" }}
{{- $skips = append $skips "CKV_K8S_9=a helm test pod runs one command and exits: nothing to probe" }}
{{- end }}
{{- range $index, $skip := $skips }}
checkov.io/skip{{ add1 $index }}: {{ $skip | quote }}
{{- end }}
{{- end }}

{{/*
Bytes of a Kubernetes memory quantity (512Mi, 1G, 1e9, 1073741824), as an integer; "" when the text
is empty or in another form (then RabbitMQ measures the memory itself).
*/}}
{{- define "rabbitmq.bytes" -}}
{{- $text := . | toString | trim }}
{{- $units := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?(k|M|G|T|Ki|Mi|Gi|Ti)?$" $text }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $text }}
{{- $unit := trimPrefix $number $text }}
{{- mulf ($number | float64) (index $units $unit) | floor | int64 }}
{{- else if regexMatch "^[0-9]+(\\.[0-9]+)?e\\+?[0-9]+$" $text }}
{{- $text | float64 | floor | int64 }}
{{- end }}
{{- end }}
