{{/*
The RabbitMQ user, its password and the Erlang cookie, kept in the chart's Secret, and the memory
size RabbitMQ reads. jobworker-common computes the names and labels, renders what every broker
has, and reports the findings of validateValues and checkovSkips.
*/}}
{{- define "rabbitmq.fullname" -}}{{ include "jobworker-common.names.fullname" . }}{{- end }}
{{- define "rabbitmq.labels" -}}{{ include "jobworker-common.labels.standard" (dict "context" . "component" "server") }}{{- end }}
{{- define "rabbitmq.image" -}}{{ include "jobworker-common.images.image" (dict "image" .Values.image "chart" .Chart) }}{{- end }}

{{/*
The label a client pod carries to pass the NetworkPolicy; client charts (coarse-queue-job) compute
the same pair for their pods.
*/}}
{{- define "rabbitmq.clientLabels" -}}
{{- include "jobworker-common.networkPolicies.clientLabel" (dict "broker" "rabbitmq" "fullname" (include "rabbitmq.fullname" .)) }}
{{- end }}

{{/* The Secret holding the user name and password (ours, or auth.existingSecret), and their keys in it. */}}
{{- define "rabbitmq.secretName" -}}{{ include "jobworker-common.secrets.name" . }}{{- end }}
{{- define "rabbitmq.secretUsernameKey" -}}
{{- include "jobworker-common.secrets.key" (dict "context" . "existingKey" "existingSecretUsernameKey" "key" "rabbitmq-username") }}
{{- end }}
{{- define "rabbitmq.secretPasswordKey" -}}
{{- include "jobworker-common.secrets.key" (dict "context" . "existingKey" "existingSecretPasswordKey" "key" "rabbitmq-password") }}
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
{{- include "jobworker-common.validations.fail" $messages }}
{{- end }}

{{- define "rabbitmq.checkovSkips" -}}
{{- $ := .context }}
{{- $skips := include "jobworker-common.checkov.imageSkips" (dict "image" $.Values.image) | fromJsonArray }}
{{- $skips = append $skips "CKV_K8S_35=rabbitmq-server and its CLI tools read the user, password and Erlang cookie only from the environment; they come from secretKeyRefs, never plain values" }}
{{- if lt (int (default 0 $.Values.podSecurityContext.runAsUser)) 10000 }}
{{- $skips = append $skips "CKV_K8S_40=runs as the official image's own user rabbitmq (999); set podSecurityContext.runAsUser to change it" }}
{{- end }}
{{- include "jobworker-common.checkov.annotations" (dict "skips" $skips "test" .test) }}
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
