{{/*
Redis's password and its Secret, and the memory sizes redis.conf reads. The names, the labels and
the objects of a broker come from jobworker-common; so does the way validateValues (the checks the
schema cannot express) and checkovSkips (the scanner's checks not met on purpose) are reported.
*/}}
{{- define "redis.fullname" -}}{{ include "jobworker-common.names.fullname" . }}{{- end }}
{{- define "redis.labels" -}}{{ include "jobworker-common.labels.standard" (dict "context" . "component" "server") }}{{- end }}
{{- define "redis.image" -}}{{ include "jobworker-common.images.image" (dict "image" .Values.image "chart" .Chart) }}{{- end }}

{{/*
The label a client pod carries to pass the NetworkPolicy; client charts (fine-queue-job) compute
the same pair for their pods.
*/}}
{{- define "redis.clientLabels" -}}
{{- include "jobworker-common.networkPolicies.clientLabel" (dict "broker" "redis" "fullname" (include "redis.fullname" .)) }}
{{- end }}

{{/* The Secret holding the password (ours, or auth.existingSecret), and the password's key in it. */}}
{{- define "redis.secretName" -}}{{ include "jobworker-common.secrets.name" . }}{{- end }}
{{- define "redis.secretPasswordKey" -}}
{{- include "jobworker-common.secrets.key" (dict "context" . "existingKey" "existingSecretPasswordKey" "key" "redis-password") }}
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
{{- include "jobworker-common.validations.fail" $messages }}
{{- end }}

{{- define "redis.checkovSkips" -}}
{{- $ := .context }}
{{- $skips := include "jobworker-common.checkov.imageSkips" (dict "image" $.Values.image) | fromJsonArray }}
{{- if $.Values.auth.enabled }}
{{- $skips = append $skips "CKV_K8S_35=redis-server and redis-cli read the password only from the environment; it comes from a secretKeyRef, never a plain value" }}
{{- end }}
{{- if lt (int (default 0 $.Values.podSecurityContext.runAsUser)) 10000 }}
{{- $skips = append $skips "CKV_K8S_40=runs as the official image's own user redis (999); set podSecurityContext.runAsUser to change it" }}
{{- end }}
{{- include "jobworker-common.checkov.annotations" (dict "skips" $skips "test" .test) }}
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
