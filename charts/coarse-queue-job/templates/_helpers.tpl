{{/*
The RabbitMQ queue of the release and how `jobworker coarse` reaches it, the Job's completions and
backoffLimit (one pod per item), the worker's options, and validateValues and checkovSkips; the
rest of the Job comes from jobworker-common's helpers for the Job charts.
*/}}
{{- define "coarse-queue-job.fullname" -}}{{ include "jobworker-common.names.fullname" . }}{{- end }}

{{/* The RabbitMQ queue of this release: queueName, else the full name (never shared by two releases). */}}
{{- define "coarse-queue-job.queueName" -}}
{{- default (include "coarse-queue-job.fullname" .) .Values.queueName }}
{{- end }}

{{/* The Job's completions: the value, else one per item (validateValues requires one of them). */}}
{{- define "coarse-queue-job.completions" -}}
{{- if not (kindIs "invalid" .Values.completions) }}
{{- .Values.completions | int64 }}
{{- else }}
{{- include "jobworker-common.items.count" . }}
{{- end }}
{{- end }}

{{/*
The Job's backoffLimit: the value, else room for every item to fail all its attempts but the last
(each such failure ends its pod with exit 5, which counts) plus 6, Kubernetes' own default, for
other failures (a broker that took too long to start, a pod killed for memory).
*/}}
{{- define "coarse-queue-job.backoffLimit" -}}
{{- if not (kindIs "invalid" .Values.backoffLimit) }}
{{- .Values.backoffLimit | int64 }}
{{- else }}
{{- add (mul (include "coarse-queue-job.completions" . | default 0 | int) (sub (int .Values.maxAttempts) 1)) 6 }}
{{- end }}
{{- end }}

{{/* The rules of the pod failure policy, as YAML; the first rule that matches a failed pod applies. */}}
{{- define "coarse-queue-job.podFailurePolicyRules" -}}
{{- with .Values.podFailurePolicy.failJobExitCodes }}
# Exit codes that no retry can fix end the Job at once, with the rule and the code in its
# condition's message: 2 = bad command line, 4 = no message came within waitSeconds (the queue
# holds fewer messages than the Job still needs completions).
{{ include "jobworker-common.podFailurePolicy.exitCodesRule" (dict "action" "FailJob" "codes" .) }}
{{- end }}
# 5 = the item failed and went back to the queue: the failed pod counts against backoffLimit and
# the Job starts another, which takes the item (or another one) for its next attempt. This is
# what Kubernetes does with an exit code no rule matches; the rule says so in the Job itself.
{{ include "jobworker-common.podFailurePolicy.exitCodesRule" (dict "action" "Count" "codes" (list 5)) }}
{{- if .Values.podFailurePolicy.ignoreDisruptions }}
# Evicted, preempted or drained pods are replaced without counting against backoffLimit: the
# broker puts their unacknowledged message back in the queue when their connection ends.
{{ include "jobworker-common.podFailurePolicy.disruptionRule" . }}
{{- end }}
{{- end }}

{{/*
The bundled rabbitmq chart's full name, as that chart computes it from its own values: the host
name of its Service and its Secret's name.
*/}}
{{- define "coarse-queue-job.rabbitmq.fullname" -}}
{{- include "jobworker-common.names.dependencyFullname" (dict "context" . "dependency" "rabbitmq") }}
{{- end }}

{{/* amqp://host:port/vhost, without any credentials (they come from AMQP_USERNAME and AMQP_PASSWORD). */}}
{{- define "coarse-queue-job.amqp.url" -}}
{{- if .Values.rabbitmq.enabled }}
{{- printf "amqp://%s:%v/%%2F" (include "coarse-queue-job.rabbitmq.fullname" .) (dig "service" "port" 5672 .Values.rabbitmq) }}
{{- else }}
{{- $scheme := ternary "amqps" "amqp" .Values.externalRabbitmq.tls }}
{{- printf "%s://%s:%v/%s" $scheme .Values.externalRabbitmq.host .Values.externalRabbitmq.port (urlquery .Values.externalRabbitmq.vhost) }}
{{- end }}
{{- end }}

{{/* "name usernameKey passwordKey" of the Secret holding the RabbitMQ user, or "" when there is none. */}}
{{- define "coarse-queue-job.amqp.secretRef" -}}
{{- if .Values.rabbitmq.enabled }}
{{- $existing := dig "auth" "existingSecret" "" .Values.rabbitmq }}
{{- if $existing }}
{{- printf "%s %s %s" $existing (dig "auth" "existingSecretUsernameKey" "rabbitmq-username" .Values.rabbitmq) (dig "auth" "existingSecretPasswordKey" "rabbitmq-password" .Values.rabbitmq) }}
{{- else }}
{{- printf "%s rabbitmq-username rabbitmq-password" (include "coarse-queue-job.rabbitmq.fullname" .) }}
{{- end }}
{{- else if .Values.externalRabbitmq.existingSecret }}
{{- printf "%s %s %s" .Values.externalRabbitmq.existingSecret .Values.externalRabbitmq.existingSecretUsernameKey .Values.externalRabbitmq.existingSecretPasswordKey }}
{{- end }}
{{- end }}

{{/*
Labels of a pod of the release (dict "context" $ "component" NAME): those of every pod (see
jobworker-common.labels.pod), and the label the bundled RabbitMQ's NetworkPolicy admits.
*/}}
{{- define "coarse-queue-job.podLabels" -}}
{{- $clientLabels := "" }}
{{- if .context.Values.rabbitmq.enabled }}
{{- $clientLabels = include "jobworker-common.networkPolicies.clientLabel" (dict "broker" "rabbitmq" "fullname" (include "coarse-queue-job.rabbitmq.fullname" .context)) }}
{{- end }}
{{- include "jobworker-common.labels.pod" (dict "context" .context "component" .component "labels" $clientLabels) }}
{{- end }}

{{/*
The environment every jobworker command of the release needs: where the queue is, and the user
and password from their Secret (secretKeyRefs: they never appear in the manifest).
*/}}
{{- define "coarse-queue-job.queueEnv" -}}
- name: AMQP_URL
  value: {{ include "coarse-queue-job.amqp.url" . | quote }}
{{- with (include "coarse-queue-job.amqp.secretRef" .) }}
{{- $ref := splitList " " . }}
- name: AMQP_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ index $ref 0 }}
      key: {{ index $ref 1 }}
- name: AMQP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ index $ref 0 }}
      key: {{ index $ref 2 }}
{{- end }}
{{ include "jobworker-common.env.queue" (dict "context" . "queue" (include "coarse-queue-job.queueName" .)) }}
{{- end }}

{{/* With items, the seed the worker makes before it works: the items file and how to declare the queue. */}}
{{- define "coarse-queue-job.seedEnv" -}}
{{ include "jobworker-common.items.seedFileEnv" . }}
{{- if .Values.quorumQueue }}
- name: QUORUM_QUEUE
  value: "true"
{{- end }}
{{- end }}

{{/* The worker's own options, as the environment variables `jobworker coarse` reads. */}}
{{- define "coarse-queue-job.workerEnv" -}}
- name: MAX_ATTEMPTS
  value: {{ .Values.maxAttempts | quote }}
- name: WAIT_SECONDS
  value: {{ .Values.waitSeconds | quote }}
- name: GRACE_SECONDS
  value: {{ .Values.graceSeconds | quote }}
- name: ITEM_DELIVERY
  value: {{ .Values.delivery | quote }}
{{- if not (kindIs "invalid" .Values.consumerTimeoutSeconds) }}
- name: CONSUMER_TIMEOUT
  value: {{ .Values.consumerTimeoutSeconds | quote }}
{{- end }}
{{- end }}

{{- define "coarse-queue-job.validateValues" -}}
{{- $messages := list }}
{{- $count := include "jobworker-common.items.count" . }}
{{- if hasPrefix "amq." (include "coarse-queue-job.queueName" .) }}
{{- $messages = append $messages (printf "the queue name %q starts with amq., which RabbitMQ keeps for itself: set queueName" (include "coarse-queue-job.queueName" .)) }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.itemsOrItemsFile" . | fromJsonArray) }}
{{- if and .Values.itemsFile (eq $count "0") }}
{{- $messages = append $messages "itemsFile holds no item (only blank lines): give at least one line, or leave itemsFile empty" }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.itemsSize" (dict "context" . "advice" "seed the queue from outside instead") | fromJsonArray) }}
{{- if not .Values.command }}
{{- $messages = append $messages "command is not set: give the program to run on each item (command: [prog, arg, ...])" }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.argsWithoutCommand" . | fromJsonArray) }}
{{- $messages = concat $messages (include "jobworker-common.validations.deliveryPlaceholder" . | fromJsonArray) }}
{{- if and (not (include "jobworker-common.items.given" .)) (kindIs "invalid" .Values.completions) }}
{{- $messages = append $messages "completions is not set and there are no items: give the items (items or itemsFile), or set completions to the number of messages you put in the queue yourself" }}
{{- end }}
{{- if and (include "jobworker-common.items.given" .) (not (kindIs "invalid" .Values.completions)) (ne $count "0") }}
{{- if ne (int .Values.completions) (int $count) }}
{{- $messages = append $messages (printf "completions (%v) must equal the number of items (%s), one pod per item: leave completions empty and the chart sets it" .Values.completions $count) }}
{{- end }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.restartPolicy" . | fromJsonArray) }}
{{- /* Each code in turn: out of order, or 5, which the worker uses to hand an item back. */}}
{{- $previous := 0 }}
{{- range .Values.podFailurePolicy.failJobExitCodes }}
{{- if le (int .) $previous }}
{{- $messages = append $messages "podFailurePolicy.failJobExitCodes must be in increasing order without repeats (Kubernetes requires it)" }}
{{- end }}
{{- if eq (int .) 5 }}
{{- $messages = append $messages "podFailurePolicy.failJobExitCodes must not contain 5: a worker exits 5 when its item failed and went back to the queue for another attempt, which needs a new pod, not a failed Job" }}
{{- end }}
{{- $previous = int . }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.graceSeconds" (dict "context" . "held" "its message") | fromJsonArray) }}
{{- $messages = concat $messages (include "jobworker-common.validations.broker" (dict "context" . "broker" "rabbitmq" "external" "externalRabbitmq" "product" "RabbitMQ" "credentials" "its user is in rabbitmq.auth") | fromJsonArray) }}
{{- if and (not .Values.rabbitmq.enabled) .Values.externalRabbitmq.host (not .Values.externalRabbitmq.existingSecret) }}
{{- $messages = append $messages "externalRabbitmq.existingSecret is empty: the workers need the user name and password of the external RabbitMQ from a Secret (there is no guest)" }}
{{- end }}
{{- include "jobworker-common.validations.fail" $messages }}
{{- end }}

{{- define "coarse-queue-job.checkovSkips" -}}
{{- $ := .context }}
{{- $skips := include "jobworker-common.checkov.imageSkips" (dict "image" $.Values.image) | fromJsonArray }}
{{- if include "coarse-queue-job.amqp.secretRef" $ }}
{{- $skips = append $skips "CKV_K8S_35=jobworker reads the RabbitMQ user and password only from AMQP_USERNAME and AMQP_PASSWORD; they come from secretKeyRefs, never plain values" }}
{{- end }}
{{- include "jobworker-common.checkov.annotations" (dict "skips" $skips "test" .test) }}
{{- end }}
