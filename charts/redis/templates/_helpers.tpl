{{/*
Names, labels and the values every template shares.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "redis.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-<name>, or just <release> when the release name
already contains the chart name; fullnameOverride wins. 63 characters at most (DNS label).
*/}}
{{- define "redis.fullname" -}}
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
{{- define "redis.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "redis.labels" -}}
helm.sh/chart: {{ include "redis.chart" . }}
{{ include "redis.selectorLabels" . }}
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
{{- define "redis.podLabels" -}}
{{- $ := .context }}
{{- $labels := mustMergeOverwrite (dict) ($.Values.podLabels | default dict) (include "redis.labels" $ | fromYaml) (dict "app.kubernetes.io/component" .component) }}
{{- if .client }}
{{- $labels = mustMergeOverwrite $labels (include "redis.clientLabels" $ | fromYaml) }}
{{- end }}
{{- toYaml $labels }}
{{- end }}

{{/* Labels that select the Redis pod: they never change across upgrades. */}}
{{- define "redis.selectorLabels" -}}
app.kubernetes.io/name: {{ include "redis.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/*
The label a client pod carries to pass the NetworkPolicy: key redis.clientLabelKey, value the
full name. Client charts (fine-queue-job) compute the same pair for their pods.
*/}}
{{- define "redis.clientLabelKey" -}}
jobworker.github.io/redis-client
{{- end }}

{{- define "redis.clientLabels" -}}
{{ include "redis.clientLabelKey" . }}: {{ include "redis.fullname" . }}
{{- end }}

{{/* The ServiceAccount the pod runs as. */}}
{{- define "redis.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "redis.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest. */}}
{{- define "redis.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* The Secret holding the password: ours, or auth.existingSecret. */}}
{{- define "redis.secretName" -}}
{{- default (include "redis.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/* The key of the password in that Secret. */}}
{{- define "redis.secretPasswordKey" -}}
{{- if .Values.auth.existingSecret }}
{{- .Values.auth.existingSecretPasswordKey }}
{{- else -}}
redis-password
{{- end }}
{{- end }}

{{/*
The password of the Secret we own, base64-encoded: the one already stored in the release's Secret
(lookup, so `helm upgrade` keeps it), else a new random one. There is deliberately no value for a
password in values.yaml: bring your own through auth.existingSecret. `helm template` and
`--dry-run` cannot look up, so they show a new random password each time.
*/}}
{{- define "redis.passwordB64" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "redis.fullname" .) }}
{{- $stored := "" }}
{{- if $existing }}
{{- $stored = index ($existing.data | default dict) "redis-password" | default "" }}
{{- end }}
{{- $stored | default (randAlphaNum 32 | b64enc) }}
{{- end }}

{{/*
Environment variables with the password, from the Secret: the server's REDIS_PASSWORD (expanded
into its arguments by the kubelet) and redis-cli's REDISCLI_AUTH (probes, `kubectl exec`).
*/}}
{{- define "redis.passwordEnv" -}}
{{- if .Values.auth.enabled }}
{{- range list "REDIS_PASSWORD" "REDISCLI_AUTH" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "redis.secretName" $ }}
      key: {{ include "redis.secretPasswordKey" $ }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Every check between values that the schema cannot express, gathered so that one `helm install`
reports all of them at once.
*/}}
{{- define "redis.validateValues" -}}
{{- $messages := list }}
{{- if and (not .Values.auth.enabled) .Values.auth.existingSecret }}
{{- $messages = append $messages "auth.existingSecret is set but auth.enabled is false: enable auth, or drop auth.existingSecret" }}
{{- end }}
{{- if regexMatch "(?im)^\\s*(requirepass|maxmemory-policy|dir|port|appendonly)\\b" .Values.config.extra }}
{{- $messages = append $messages "config.extra must not set requirepass, maxmemory-policy, dir, port or appendonly: the chart sets them from auth.*, persistence.* and service.port" }}
{{- end }}
{{- $limit := include "redis.bytes" (dig "limits" "memory" "" (.Values.resources | default dict)) }}
{{- $maxmemory := include "redis.bytes" .Values.config.maxmemory }}
{{- if and $limit $maxmemory }}
{{- if ge ($maxmemory | float64) ($limit | float64) }}
{{- $messages = append $messages (printf "config.maxmemory (%s) must be below resources.limits.memory (%s): Redis would be killed for lack of memory instead of refusing writes" .Values.config.maxmemory .Values.resources.limits.memory) }}
{{- end }}
{{- end }}
{{- if $messages }}
{{- fail (printf "\n\nVALUES VALIDATION:\n- %s" (join "\n- " $messages)) }}
{{- end }}
{{- end }}

{{/* The timing fields of a probe, from its values block. */}}
{{- define "redis.probeTimings" -}}
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}

{{/*
checkov annotations (checkov.io/skipN: ID=reason) for the checks this chart does not meet on
purpose, each only while the values make it true; dict "context" $ "test" BOOL.
*/}}
{{- define "redis.checkovSkips" -}}
{{- $ := .context }}
{{- $skips := list }}
{{- if not $.Values.image.digest }}
{{- $skips = append $skips "CKV_K8S_43=the image is referenced by its release tag; set image.digest to pin a digest" }}
{{- end }}
{{- if ne $.Values.image.pullPolicy "Always" }}
{{- $skips = append $skips "CKV_K8S_15=release tags do not move, so the node's copy is used (IfNotPresent); set image.pullPolicy to Always to change it" }}
{{- end }}
{{- if $.Values.auth.enabled }}
{{- $skips = append $skips "CKV_K8S_35=redis-server and redis-cli read the password only from the environment; it comes from a secretKeyRef, never a plain value" }}
{{- end }}
{{- if lt (int (default 0 $.Values.podSecurityContext.runAsUser)) 10000 }}
{{- $skips = append $skips "CKV_K8S_40=runs as the official image's own user redis (999); set podSecurityContext.runAsUser to change it" }}
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
Bytes of a Kubernetes memory quantity (512Mi, 1G) or a redis.conf memory size (400mb, 1gb, 2g);
"" when the text is empty or in another form (then no comparison is made).
*/}}
{{- define "redis.bytes" -}}
{{- $text := . | toString | lower | trim }}
{{- $units := dict "" 1 "k" 1000 "m" 1000000 "g" 1000000000 "t" 1000000000000 "ki" 1024 "mi" 1048576 "gi" 1073741824 "ti" 1099511627776 "kb" 1024 "mb" 1048576 "gb" 1073741824 }}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?(k|m|g|t|ki|mi|gi|ti|kb|mb|gb)?$" $text }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $text }}
{{- $unit := trimPrefix $number $text }}
{{- mulf ($number | float64) (index $units $unit) }}
{{- end }}
{{- end }}
