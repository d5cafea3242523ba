{{/*
Names, labels and the pieces of the pod spec that the templates share.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "coarse-queue-job.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-<name>, or just <release> when the release name
already contains the chart name; fullnameOverride wins. 63 characters at most (DNS label).
*/}}
{{- define "coarse-queue-job.fullname" -}}
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
{{- define "coarse-queue-job.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "coarse-queue-job.labels" -}}
helm.sh/chart: {{ include "coarse-queue-job.chart" . }}
{{ include "coarse-queue-job.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jobworker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that identify the release's objects of this chart. */}}
{{- define "coarse-queue-job.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coarse-queue-job.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "coarse-queue-job.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "coarse-queue-job.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest; the tag defaults to the chart's appVersion. */}}
{{- define "coarse-queue-job.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* The RabbitMQ queue of this release: queueName, else the full name (never shared by two releases). */}}
{{- define "coarse-queue-job.queueName" -}}
{{- default (include "coarse-queue-job.fullname" .) .Values.queueName }}
{{- end }}

{{/* Whether the chart seeds the queue itself ("true" or ""). */}}
{{- define "coarse-queue-job.seeded" -}}
{{- if or .Values.items .Values.itemsFile }}true{{ end }}
{{- end }}

{{/*
The number of items the chart seeds, counted as `jobworker seed` reads them: the entries of
`items`, or the lines of `itemsFile` that are not empty once a trailing CR is dropped. "" when the
chart does not seed.
*/}}
{{- define "coarse-queue-job.itemCount" -}}
{{- if .Values.items }}
{{- len .Values.items }}
{{- else if .Values.itemsFile }}
{{- $count := 0 }}
{{- range splitList "\n" .Values.itemsFile }}
{{- if trimSuffix "\r" . }}
{{- $count = add1 $count }}
{{- end }}
{{- end }}
{{- $count }}
{{- end }}
{{- end }}

{{/* The Job's completions: the value, else one per seeded item ("" when neither is known). */}}
{{- define "coarse-queue-job.completions" -}}
{{- if not (kindIs "invalid" .Values.completions) }}
{{- .Values.completions | int64 }}
{{- else }}
{{- include "coarse-queue-job.itemCount" . }}
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

{{/* The items file in the ConfigMap: a JSON array for `items`, text lines for `itemsFile`. */}}
{{- define "coarse-queue-job.itemsKey" -}}
{{- if .Values.items }}items.json{{ else }}items.txt{{ end }}
{{- end }}

{{- define "coarse-queue-job.itemsDir" -}}
/etc/jobworker/items
{{- end }}

{{/*
podFailurePolicy is beta and on by default from Kubernetes 1.26 (alpha behind a feature gate in
1.25, GA in 1.31), and the DisruptionTarget pod condition it matches became beta in 1.26 too. On
1.25 the API server would silently drop the field, so it is not rendered there: the chart says
what it does rather than what the cluster ignores.
*/}}
{{- define "coarse-queue-job.podFailurePolicySupported" -}}
{{- if semverCompare ">=1.26-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end }}

{{/* The rules of the pod failure policy, as YAML; the first rule that matches a failed pod applies. */}}
{{- define "coarse-queue-job.podFailurePolicyRules" -}}
{{- with .Values.podFailurePolicy.failJobExitCodes }}
# Exit codes that no retry can fix end the Job at once, with the rule and the code in its
# condition's message: 2 = bad command line, 4 = no message came within waitSeconds (the queue
# holds fewer messages than the Job still needs completions).
- action: FailJob
  onExitCodes:
    containerName: worker
    operator: In
    values:
      {{- toYaml . | nindent 6 }}
{{- end }}
# 5 = the item failed and went back to the queue: the failed pod counts against backoffLimit and
# the Job starts another, which takes the item (or another one) for its next attempt. This is
# what Kubernetes does with an exit code no rule matches; the rule says so in the Job itself.
- action: Count
  onExitCodes:
    containerName: worker
    operator: In
    values:
      - 5
{{- if .Values.podFailurePolicy.ignoreDisruptions }}
# Evicted, preempted or drained pods are replaced without counting against backoffLimit: the
# broker puts their unacknowledged message back in the queue when their connection ends.
- action: Ignore
  onPodConditions:
    - type: DisruptionTarget
      status: "True"
{{- end }}
{{- end }}

{{/*
The bundled rabbitmq chart's full name, computed as that chart computes it from its own values
(rabbitmq.fullnameOverride, rabbitmq.nameOverride): the host name of its Service and its Secret's name.
*/}}
{{- define "coarse-queue-job.rabbitmq.fullname" -}}
{{- $rabbitmq := .Values.rabbitmq | default dict }}
{{- if $rabbitmq.fullnameOverride }}
{{- $rabbitmq.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default "rabbitmq" $rabbitmq.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
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
The label that the bundled RabbitMQ's NetworkPolicy admits (see rabbitmq.clientLabels in the
rabbitmq chart); empty with an external broker.
*/}}
{{- define "coarse-queue-job.rabbitmq.clientLabels" -}}
{{- if .Values.rabbitmq.enabled }}
jobworker.github.io/rabbitmq-client: {{ include "coarse-queue-job.rabbitmq.fullname" . }}
{{- end }}
{{- end }}

{{/*
Labels of a pod of the release (dict "context" $ "component" NAME): podLabels, then the chart's
labels, the component and the label the bundled RabbitMQ's NetworkPolicy admits. Merged as maps
so that a podLabels key repeating one of the chart's never renders a duplicate key.
*/}}
{{- define "coarse-queue-job.podLabels" -}}
{{- $ := .context }}
{{- $labels := mustMergeOverwrite (dict) ($.Values.podLabels | default dict) (include "coarse-queue-job.labels" $ | fromYaml) (dict "app.kubernetes.io/component" .component) }}
{{- with (include "coarse-queue-job.rabbitmq.clientLabels" $ | fromYaml) }}
{{- $labels = mustMergeOverwrite $labels . }}
{{- end }}
{{- toYaml $labels }}
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
- name: QUEUE_NAME
  value: {{ include "coarse-queue-job.queueName" . | quote }}
- name: CONNECT_TIMEOUT
  value: {{ .Values.connectTimeoutSeconds | quote }}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end }}

{{/* x-consumer-timeout for the seed (on the queue) and the worker (on its consumer), when set. */}}
{{- define "coarse-queue-job.consumerTimeoutEnv" -}}
{{- if not (kindIs "invalid" .Values.consumerTimeoutSeconds) }}
- name: CONSUMER_TIMEOUT
  value: {{ .Values.consumerTimeoutSeconds | quote }}
{{- end }}
{{- end }}

{{/* The seed's own options, as the environment variables `jobworker seed` reads. */}}
{{- define "coarse-queue-job.seedEnv" -}}
{{- include "coarse-queue-job.consumerTimeoutEnv" . }}
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
{{- include "coarse-queue-job.consumerTimeoutEnv" . }}
{{- end }}

{{/*
Every check between values that the schema cannot express, gathered so that one `helm install`
reports all of them at once, each naming the values involved.
*/}}
{{- define "coarse-queue-job.validateValues" -}}
{{- $messages := list }}
{{- $program := concat (.Values.command | default list) (.Values.args | default list) }}
{{- $count := include "coarse-queue-job.itemCount" . }}
{{- if hasPrefix "amq." (include "coarse-queue-job.queueName" .) }}
{{- $messages = append $messages (printf "the queue name %q starts with amq., which RabbitMQ keeps for itself: set queueName" (include "coarse-queue-job.queueName" .)) }}
{{- end }}
{{- if and .Values.items .Values.itemsFile }}
{{- $messages = append $messages "items and itemsFile are both set: give the items in one of them" }}
{{- end }}
{{- if and .Values.itemsFile (eq $count "0") }}
{{- $messages = append $messages "itemsFile holds no item (only blank lines): give at least one line, or leave itemsFile empty" }}
{{- end }}
{{- if .Values.items }}
{{- if gt (len (toJson .Values.items)) 1000000 }}
{{- $messages = append $messages "items take more than 1000000 bytes as JSON, too much for a ConfigMap: seed the queue from outside instead" }}
{{- end }}
{{- else if gt (len .Values.itemsFile) 1000000 }}
{{- $messages = append $messages "itemsFile is larger than 1000000 bytes, too much for a ConfigMap: seed the queue from outside instead" }}
{{- end }}
{{- if not .Values.command }}
{{- $messages = append $messages "command is not set: give the program to run on each item (command: [prog, arg, ...])" }}
{{- end }}
{{- if and .Values.args (not .Values.command) }}
{{- $messages = append $messages "args is set without command: args are appended to command" }}
{{- end }}
{{- if and (eq .Values.delivery "arg") (not (contains "{item}" (join " " $program))) }}
{{- $messages = append $messages "delivery is \"arg\" but no element of command/args contains {item}" }}
{{- end }}
{{- if and (eq .Values.delivery "file") (not (contains "{item_file}" (join " " $program))) }}
{{- $messages = append $messages "delivery is \"file\" but no element of command/args contains {item_file}" }}
{{- end }}
{{- if and (not (include "coarse-queue-job.seeded" .)) (kindIs "invalid" .Values.completions) }}
{{- $messages = append $messages "completions is not set and there are no items: give the items (items or itemsFile), or set completions to the number of messages you put in the queue yourself" }}
{{- end }}
{{- if and (include "coarse-queue-job.seeded" .) (not (kindIs "invalid" .Values.completions)) (ne $count "0") }}
{{- if ne (int .Values.completions) (int $count) }}
{{- $messages = append $messages (printf "completions (%v) must equal the number of items (%s), one pod per item: leave completions empty and the chart sets it" .Values.completions $count) }}
{{- end }}
{{- end }}
{{- if and (eq .Values.restartPolicy "OnFailure") .Values.podFailurePolicy.enabled }}
{{- $messages = append $messages "restartPolicy OnFailure cannot be combined with podFailurePolicy.enabled (Kubernetes requires restartPolicy Never for a pod failure policy): set podFailurePolicy.enabled=false, or keep restartPolicy Never" }}
{{- end }}
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
{{- if ge (int .Values.graceSeconds) (int .Values.terminationGracePeriodSeconds) }}
{{- $messages = append $messages (printf "graceSeconds (%v) must be below terminationGracePeriodSeconds (%v), or the kubelet kills the worker before it hands its message back" .Values.graceSeconds .Values.terminationGracePeriodSeconds) }}
{{- end }}
{{- if and .Values.rabbitmq.enabled .Values.externalRabbitmq.host }}
{{- $messages = append $messages "rabbitmq.enabled is true and externalRabbitmq.host is set: use the bundled RabbitMQ or an external one, not both (set rabbitmq.enabled=false)" }}
{{- end }}
{{- if and (not .Values.rabbitmq.enabled) (not .Values.externalRabbitmq.host) }}
{{- $messages = append $messages "rabbitmq.enabled is false and externalRabbitmq.host is empty: the workers need a RabbitMQ" }}
{{- end }}
{{- if and .Values.rabbitmq.enabled .Values.externalRabbitmq.existingSecret }}
{{- $messages = append $messages "externalRabbitmq.existingSecret is set but the bundled RabbitMQ is used (rabbitmq.enabled=true): its user is in rabbitmq.auth" }}
{{- end }}
{{- if and (not .Values.rabbitmq.enabled) .Values.externalRabbitmq.host (not .Values.externalRabbitmq.existingSecret) }}
{{- $messages = append $messages "externalRabbitmq.existingSecret is empty: the workers need the user name and password of the external RabbitMQ from a Secret (there is no guest)" }}
{{- end }}
{{- if $messages }}
{{- fail (printf "\n\nVALUES VALIDATION:\n- %s" (join "\n- " $messages)) }}
{{- end }}
{{- end }}

{{/*
checkov annotations (checkov.io/skipN: ID=reason) for the checks this chart does not meet on
purpose, each only while the values make it true; dict "context" $ "test" BOOL.
*/}}
{{- define "coarse-queue-job.checkovSkips" -}}
{{- $ := .context }}
{{- $skips := list }}
{{- if not $.Values.image.digest }}
{{- $skips = append $skips "CKV_K8S_43=the image is referenced by its release tag; set image.digest to pin a digest" }}
{{- end }}
{{- if ne $.Values.image.pullPolicy "Always" }}
{{- $skips = append $skips "CKV_K8S_15=release tags do not move, so the node's copy is used (IfNotPresent); set image.pullPolicy to Always to change it" }}
{{- end }}
{{- if include "coarse-queue-job.amqp.secretRef" $ }}
{{- $skips = append $skips "CKV_K8S_35=jobworker reads the RabbitMQ user and password only from AMQP_USERNAME and AMQP_PASSWORD; they come from secretKeyRefs, never plain values" }}
{{- end }}
{{- if .test }}
{{- $skips = append $skips "CKV_K8S_8=a helm test pod runs one command and exits: nothing to probe" }}
{{- $skips = append $skips "CKV_K8S_9=a helm test pod runs one command and exits: nothing to probe" }}
{{- end }}
{{- range $index, $skip := $skips }}
checkov.io/skip{{ add1 $index }}: {{ $skip | quote }}
{{- end }}
{{- end }}
