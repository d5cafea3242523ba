{{/*
The Redis list of the release and how `jobworker fine` reaches it, the worker's options and the
checks of its values (validateValues, checkovSkips). jobworker-common renders what the three Job
charts share: names, labels, the Job's metadata, its pods' worker container.
*/}}
{{- define "fine-queue-job.fullname" -}}{{ include "jobworker-common.names.fullname" . }}{{- end }}

{{/* The Redis list of this release: queueName, else the full name (never shared by two releases). */}}
{{- define "fine-queue-job.queueName" -}}
{{- default (include "fine-queue-job.fullname" .) .Values.queueName }}
{{- end }}

{{/* The rules of the pod failure policy, as YAML ("" when there are none). */}}
{{- define "fine-queue-job.podFailurePolicyRules" -}}
{{- with .Values.podFailurePolicy.failJobExitCodes }}
# Exit codes that no retry can fix end the Job at once, with the rule and the code in its
# condition's message: 3 = the queue finished with failed items, 2 = bad command line.
{{ include "jobworker-common.podFailurePolicy.exitCodesRule" (dict "action" "FailJob" "codes" .) }}
{{- end }}
{{- if .Values.podFailurePolicy.ignoreDisruptions }}
# Evicted, preempted or drained pods are replaced without counting against backoffLimit: the
# items they held go back to the queue when their lease expires.
{{ include "jobworker-common.podFailurePolicy.disruptionRule" . }}
{{- end }}
{{- end }}

{{/*
The bundled redis chart's full name, as that chart computes it from its own values: the host name
of its Service and its Secret's name.
*/}}
{{- define "fine-queue-job.redis.fullname" -}}
{{- include "jobworker-common.names.dependencyFullname" (dict "context" . "dependency" "redis") }}
{{- end }}

{{/* redis://host:port/db, without any password (that comes from REDIS_PASSWORD). */}}
{{- define "fine-queue-job.redis.url" -}}
{{- if .Values.redis.enabled }}
{{- printf "redis://%s:%v/0" (include "fine-queue-job.redis.fullname" .) (dig "service" "port" 6379 .Values.redis) }}
{{- else }}
{{- $scheme := ternary "rediss" "redis" .Values.externalRedis.tls }}
{{- printf "%s://%s:%v/%v" $scheme .Values.externalRedis.host .Values.externalRedis.port .Values.externalRedis.database }}
{{- end }}
{{- end }}

{{/* "name key" of the Secret holding the Redis password, or "" when Redis has none. */}}
{{- define "fine-queue-job.redis.secretRef" -}}
{{- if .Values.redis.enabled }}
{{- if dig "auth" "enabled" true .Values.redis }}
{{- $existing := dig "auth" "existingSecret" "" .Values.redis }}
{{- if $existing }}
{{- printf "%s %s" $existing (dig "auth" "existingSecretPasswordKey" "redis-password" .Values.redis) }}
{{- else }}
{{- printf "%s redis-password" (include "fine-queue-job.redis.fullname" .) }}
{{- end }}
{{- end }}
{{- else if .Values.externalRedis.existingSecret }}
{{- printf "%s %s" .Values.externalRedis.existingSecret .Values.externalRedis.existingSecretPasswordKey }}
{{- end }}
{{- end }}

{{/*
Labels of a pod of the release (dict "context" $ "component" NAME): those of every pod (see
jobworker-common.labels.pod), and the label the bundled Redis's NetworkPolicy admits.
*/}}
{{- define "fine-queue-job.podLabels" -}}
{{- $clientLabels := "" }}
{{- if .context.Values.redis.enabled }}
{{- $clientLabels = include "jobworker-common.networkPolicies.clientLabel" (dict "broker" "redis" "fullname" (include "fine-queue-job.redis.fullname" .context)) }}
{{- end }}
{{- include "jobworker-common.labels.pod" (dict "context" .context "component" .component "labels" $clientLabels) }}
{{- end }}

{{/*
The environment every jobworker command of the release needs: where the queue is, and the
password from its Secret (a secretKeyRef: it never appears in the manifest).
*/}}
{{- define "fine-queue-job.queueEnv" -}}
- name: REDIS_URL
  value: {{ include "fine-queue-job.redis.url" . | quote }}
{{- with (include "fine-queue-job.redis.secretRef" .) }}
{{- $ref := splitList " " . }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ index $ref 0 }}
      key: {{ index $ref 1 }}
{{- end }}
{{ include "jobworker-common.env.queue" (dict "context" . "queue" (include "fine-queue-job.queueName" .)) }}
{{- end }}

{{/* The worker's own options, as the environment variables `jobworker fine` reads. */}}
{{- define "fine-queue-job.workerEnv" -}}
- name: LEASE_SECONDS
  value: {{ .Values.leaseSeconds | quote }}
- name: MAX_ATTEMPTS
  value: {{ .Values.maxAttempts | quote }}
{{- if not (kindIs "invalid" .Values.batchSize) }}
- name: BATCH_SIZE
  value: {{ .Values.batchSize | quote }}
{{- end }}
- name: WAIT_SECONDS
  value: {{ .Values.waitSeconds | quote }}
{{- /*
When the chart seeds, the worker's own seed has sealed the queue before it leases; waiting
for the seal anyway keeps a worker from taking a queue that lost its keys since (a Redis restarted
without persistence) for a finished one: it waits, exits 4 after waitSeconds, and the pod that
replaces it seeds the items again.
*/}}
{{- if or .Values.waitForSeal (include "jobworker-common.items.given" .) }}
- name: WAIT_FOR_SEAL
  value: "true"
{{- end }}
- name: GRACE_SECONDS
  value: {{ .Values.graceSeconds | quote }}
{{- if .Values.handler }}
- name: HANDLER
  value: {{ .Values.handler | quote }}
{{- else }}
- name: ITEM_DELIVERY
  value: {{ .Values.delivery | quote }}
{{- end }}
{{- end }}

{{- define "fine-queue-job.validateValues" -}}
{{- $messages := list }}
{{- $messages = concat $messages (include "jobworker-common.validations.itemsOrItemsFile" . | fromJsonArray) }}
{{- if and .Values.itemsFile (not (trim .Values.itemsFile)) }}
{{- $messages = append $messages "itemsFile holds no item (only blank lines): give at least one line, or leave itemsFile empty" }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.itemsSize" (dict "context" . "advice" "seed the queue from outside instead") | fromJsonArray) }}
{{- if and .Values.handler .Values.command }}
{{- $messages = append $messages "handler and command are both set: the worker runs either a Python handler or a command per item" }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.argsWithoutCommand" . | fromJsonArray) }}
{{- if not (or .Values.handler .Values.command) }}
{{- $messages = append $messages "neither command nor handler is set: give the program to run per item (command: [prog, arg, ...]) or handler: MODULE:FUNCTION" }}
{{- end }}
{{- if and .Values.handler (ne .Values.delivery "auto") }}
{{- $messages = append $messages (printf "delivery is %q but handler is set: a handler gets the item as its argument, delivery applies to command only" .Values.delivery) }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.deliveryPlaceholder" . | fromJsonArray) }}
{{- $messages = concat $messages (include "jobworker-common.validations.restartPolicy" . | fromJsonArray) }}
{{- if and .Values.podFailurePolicy.enabled (not .Values.podFailurePolicy.failJobExitCodes) (not .Values.podFailurePolicy.ignoreDisruptions) }}
{{- $messages = append $messages "podFailurePolicy.enabled is true but it has no rule: give podFailurePolicy.failJobExitCodes or set ignoreDisruptions, or disable it" }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.exitCodesOrder" (dict "context" . "key" "failJobExitCodes") | fromJsonArray) }}
{{- $messages = concat $messages (include "jobworker-common.validations.graceSeconds" (dict "context" . "held" "its items") | fromJsonArray) }}
{{- $messages = concat $messages (include "jobworker-common.validations.broker" (dict "context" . "broker" "redis" "external" "externalRedis" "product" "Redis" "credentials" "its password is in redis.auth") | fromJsonArray) }}
{{- include "jobworker-common.validations.fail" $messages }}
{{- end }}

{{- define "fine-queue-job.checkovSkips" -}}
{{- $ := .context }}
{{- $skips := include "jobworker-common.checkov.imageSkips" (dict "image" $.Values.image) | fromJsonArray }}
{{- if include "fine-queue-job.redis.secretRef" $ }}
{{- $skips = append $skips "CKV_K8S_35=jobworker reads the Redis password only from REDIS_PASSWORD; it comes from a secretKeyRef, never a plain value" }}
{{- end }}
{{- include "jobworker-common.checkov.annotations" (dict "skips" $skips "test" .test) }}
{{- end }}
