{{/*
Names, labels and the pieces of the pod spec that the templates share.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "fine-queue-job.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-<name>, or just <release> when the release name
already contains the chart name; fullnameOverride wins. 63 characters at most (DNS label).
*/}}
{{- define "fine-queue-job.fullname" -}}
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
{{- define "fine-queue-job.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "fine-queue-job.labels" -}}
helm.sh/chart: {{ include "fine-queue-job.chart" . }}
{{ include "fine-queue-job.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jobworker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that identify the release's objects of this chart. */}}
{{- define "fine-queue-job.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fine-queue-job.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "fine-queue-job.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fine-queue-job.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest; the tag defaults to the chart's appVersion. */}}
{{- define "fine-queue-job.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* The Redis list of this release: queueName, else the full name (never shared by two releases). */}}
{{- define "fine-queue-job.queueName" -}}
{{- default (include "fine-queue-job.fullname" .) .Values.queueName }}
{{- end }}

{{/* Whether the chart seeds the queue itself ("true" or ""). */}}
{{- define "fine-queue-job.seeded" -}}
{{- if or .Values.items .Values.itemsFile }}true{{ end }}
{{- end }}

{{/* The items file in the ConfigMap: a JSON array for `items`, text lines for `itemsFile`. */}}
{{- define "fine-queue-job.itemsKey" -}}
{{- if .Values.items }}items.json{{ else }}items.txt{{ end }}
{{- end }}

{{- define "fine-queue-job.itemsDir" -}}
/etc/jobworker/items
{{- end }}

{{/*
podFailurePolicy is beta and on by default from Kubernetes 1.26 (alpha behind a feature gate in
1.25, GA in 1.31), and the DisruptionTarget pod condition it matches became beta in 1.26 too. On
1.25 the API server would silently drop the field, so it is not rendered there: the chart says
what it does rather than what the cluster ignores.
*/}}
{{- define "fine-queue-job.podFailurePolicySupported" -}}
{{- if semverCompare ">=1.26-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end }}

{{/* The rules of the pod failure policy, as YAML ("" when there are none). */}}
{{- define "fine-queue-job.podFailurePolicyRules" -}}
{{- with .Values.podFailurePolicy.failJobExitCodes }}
# Exit codes that no retry can fix end the Job at once, with the rule and the code in its
# condition's message: 3 = the queue finished with failed items, 2 = bad command line.
- action: FailJob
  onExitCodes:
    containerName: worker
    operator: In
    values:
      {{- toYaml . | nindent 6 }}
{{- end }}
{{- if .Values.podFailurePolicy.ignoreDisruptions }}
# Evicted, preempted or drained pods are replaced without counting against backoffLimit: the
# items they held go back to the queue when their lease expires.
- action: Ignore
  onPodConditions:
    - type: DisruptionTarget
      status: "True"
{{- end }}
{{- end }}

{{/*
The bundled redis chart's full name, computed as that chart computes it from its own values
(redis.fullnameOverride, redis.nameOverride): the host name of its Service and its Secret's name.
*/}}
{{- define "fine-queue-job.redis.fullname" -}}
{{- $redis := .Values.redis | default dict }}
{{- if $redis.fullnameOverride }}
{{- $redis.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "redis" $redis.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
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
The label that the bundled Redis's NetworkPolicy admits (see redis.clientLabels in the redis
chart); empty with an external Redis.
*/}}
{{- define "fine-queue-job.redis.clientLabels" -}}
{{- if .Values.redis.enabled }}
jobworker.github.io/redis-client: {{ include "fine-queue-job.redis.fullname" . }}
{{- end }}
{{- end }}

{{/*
Labels of a pod of the release (dict "context" $ "component" NAME): podLabels, then the chart's
labels, the component and the label the bundled Redis's NetworkPolicy admits. Merged as maps so
that a podLabels key repeating one of the chart's never renders a duplicate key.
*/}}
{{- define "fine-queue-job.podLabels" -}}
{{- $ := .context }}
{{- $labels := mustMergeOverwrite (dict) ($.Values.podLabels | default dict) (include "fine-queue-job.labels" $ | fromYaml) (dict "app.kubernetes.io/component" .component) }}
{{- with (include "fine-queue-job.redis.clientLabels" $ | fromYaml) }}
{{- $labels = mustMergeOverwrite $labels . }}
{{- end }}
{{- toYaml $labels }}
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
- name: QUEUE_NAME
  value: {{ include "fine-queue-job.queueName" . | quote }}
- name: CONNECT_TIMEOUT
  value: {{ .Values.connectTimeoutSeconds | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
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
When the chart seeds, its seed container has sealed the queue before the worker starts; waiting
for the seal anyway keeps a worker from taking a queue that lost its keys (a Redis restarted
without persistence) for a finished one: it waits, exits 4 after waitSeconds, and the pod that
replaces it seeds the items again.
*/}}
{{- if or .Values.waitForSeal (include "fine-queue-job.seeded" .) }}
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

{{/*
Every check between values that the schema cannot express, gathered so that one `helm install`
reports all of them at once, each naming the values involved.
*/}}
{{- define "fine-queue-job.validateValues" -}}
{{- $messages := list }}
{{- $program := concat (.Values.command | default list) (.Values.args | default list) }}
{{- if and .Values.items .Values.itemsFile }}
{{- $messages = append $messages "items and itemsFile are both set: give the items in one of them" }}
{{- end }}
{{- if and .Values.itemsFile (not (trim .Values.itemsFile)) }}
{{- $messages = append $messages "itemsFile holds no item (only blank lines): give at least one line, or leave itemsFile empty" }}
{{- end }}
{{- if .Values.items }}
{{- if gt (len (toJson .Values.items)) 1000000 }}
{{- $messages = append $messages "items take more than 1000000 bytes as JSON, too much for a ConfigMap: seed the queue from outside instead" }}
{{- end }}
{{- else if gt (len .Values.itemsFile) 1000000 }}
{{- $messages = append $messages "itemsFile is larger than 1000000 bytes, too much for a ConfigMap: seed the queue from outside instead" }}
{{- end }}
{{- if and .Values.handler .Values.command }}
{{- $messages = append $messages "handler and command are both set: the worker runs either a Python handler or a command per item" }}
{{- end }}
{{- if and .Values.args (not .Values.command) }}
{{- $messages = append $messages "args is set without command: args are appended to command" }}
{{- end }}
{{- if not (or .Values.handler .Values.command) }}
{{- $messages = append $messages "neither command nor handler is set: give the program to run per item (command: [prog, arg, ...]) or handler: MODULE:FUNCTION" }}
{{- end }}
{{- if and .Values.handler (ne .Values.delivery "auto") }}
{{- $messages = append $messages (printf "delivery is %q but handler is set: a handler gets the item as its argument, delivery applies to command only" .Values.delivery) }}
{{- end }}
{{- if and (eq .Values.delivery "arg") (not (contains "{item}" (join " " $program))) }}
{{- $messages = append $messages "delivery is \"arg\" but no element of command/args contains {item}" }}
{{- end }}
{{- if and (eq .Values.delivery "file") (not (contains "{item_file}" (join " " $program))) }}
{{- $messages = append $messages "delivery is \"file\" but no element of command/args contains {item_file}" }}
{{- end }}
{{- if and (eq .Values.restartPolicy "OnFailure") .Values.podFailurePolicy.enabled }}
{{- $messages = append $messages "restartPolicy OnFailure cannot be combined with podFailurePolicy.enabled (Kubernetes requires restartPolicy Never for a pod failure policy): set podFailurePolicy.enabled=false, or keep restartPolicy Never" }}
{{- end }}
{{- if and .Values.podFailurePolicy.enabled (not .Values.podFailurePolicy.failJobExitCodes) (not .Values.podFailurePolicy.ignoreDisruptions) }}
{{- $messages = append $messages "podFailurePolicy.enabled is true but it has no rule: give podFailurePolicy.failJobExitCodes or set ignoreDisruptions, or disable it" }}
{{- end }}
{{- $previous := 0 }}
{{- range .Values.podFailurePolicy.failJobExitCodes }}
{{- if le (int .) $previous }}
{{- $messages = append $messages "podFailurePolicy.failJobExitCodes must be in increasing order without repeats (Kubernetes requires it)" }}
{{- end }}
{{- $previous = int . }}
{{- end }}
{{- if ge (int .Values.graceSeconds) (int .Values.terminationGracePeriodSeconds) }}
{{- $messages = append $messages (printf "graceSeconds (%v) must be below terminationGracePeriodSeconds (%v), or the kubelet kills the worker before it hands its items back" .Values.graceSeconds .Values.terminationGracePeriodSeconds) }}
{{- end }}
{{- if and .Values.redis.enabled .Values.externalRedis.host }}
{{- $messages = append $messages "redis.enabled is true and externalRedis.host is set: use the bundled Redis or an external one, not both (set redis.enabled=false)" }}
{{- end }}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.host) }}
{{- $messages = append $messages "redis.enabled is false and externalRedis.host is empty: the workers need a Redis" }}
{{- end }}
{{- if and .Values.redis.enabled .Values.externalRedis.existingSecret }}
{{- $messages = append $messages "externalRedis.existingSecret is set but the bundled Redis is used (redis.enabled=true): its password is in redis.auth" }}
{{- end }}
{{- if $messages }}
{{- fail (printf "\n\nVALUES VALIDATION:\n- %s" (join "\n- " $messages)) }}
{{- end }}
{{- end }}

{{/*
checkov annotations (checkov.io/skipN: ID=reason) for the checks this chart does not meet on
purpose, each only while the values make it true; dict "context" $ "test" BOOL.
*/}}
{{- define "fine-queue-job.checkovSkips" -}}
{{- $ := .context }}
{{- $skips := list }}
{{- if not $.Values.image.digest }}
{{- $skips = append $skips "CKV_K8S_43=the image is referenced by its release tag; set image.digest to pin a digest" }}
{{- end }}
{{- if ne $.Values.image.pullPolicy "Always" }}
{{- $skips = append $skips "CKV_K8S_15=release tags do not move, so the node's copy is used (IfNotPresent); set image.pullPolicy to Always to change it" }}
{{- end }}
{{- if include "fine-queue-job.redis.secretRef" $ }}
{{- $skips = append $skips "CKV_K8S_35=jobworker reads the Redis password only from REDIS_PASSWORD; it comes from a secretKeyRef, never a plain value" }}
{{- end }}
{{- if .test }}
{{- $skips = append $skips "CKV_K8S_8=a helm test pod runs one command and exits: nothing to probe" }}
{{- $skips = append $skips "CKV_K8S_9=a helm test pod runs one command and exits: nothing to probe" }}
{{- end }}
{{- range $index, $skip := $skips }}
checkov.io/skip{{ add1 $index }}: {{ $skip | quote }}
{{- end }}
{{- end }}
