{{/*
Names, labels and the pieces of the Job that the templates share.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "indexed-job.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-<name>, or just <release> when the release name
already contains the chart name; fullnameOverride wins. 63 characters at most (DNS label).
*/}}
{{- define "indexed-job.fullname" -}}
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
{{- define "indexed-job.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "indexed-job.labels" -}}
helm.sh/chart: {{ include "indexed-job.chart" . }}
{{ include "indexed-job.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jobworker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that identify the release's objects of this chart. */}}
{{- define "indexed-job.selectorLabels" -}}
app.kubernetes.io/name: {{ include "indexed-job.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of a pod of the release (dict "context" $ "component" NAME): podLabels, then the chart's
labels and the component, merged as maps so that a podLabels key repeating one of the chart's
never renders a duplicate key.
*/}}
{{- define "indexed-job.podLabels" -}}
{{- $ := .context }}
{{- $labels := mustMergeOverwrite (dict) ($.Values.podLabels | default dict) (include "indexed-job.labels" $ | fromYaml) (dict "app.kubernetes.io/component" .component) }}
{{- toYaml $labels }}
{{- end }}

{{/* The ServiceAccount the pods run as. */}}
{{- define "indexed-job.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "indexed-job.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The worker image: repository:tag or repository@digest; the tag defaults to the appVersion. */}}
{{- define "indexed-job.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}
{{- end }}

{{/* Your program's image (init-container variant); validateValues requires a tag or a digest. */}}
{{- define "indexed-job.programImage" -}}
{{- if .Values.programImage.digest }}
{{- printf "%s@%s" .Values.programImage.repository .Values.programImage.digest }}
{{- else }}
{{- printf "%s:%s" .Values.programImage.repository (.Values.programImage.tag | toString) }}
{{- end }}
{{- end }}

{{/* Whether the program runs in an image of the user's ("true" or ""): the init-container variant. */}}
{{- define "indexed-job.programImageMode" -}}
{{- if .Values.programImage.repository }}true{{ end }}
{{- end }}

{{/* Whether items are given ("true" or ""). */}}
{{- define "indexed-job.hasItems" -}}
{{- if or .Values.items .Values.itemsFile }}true{{ end }}
{{- end }}

{{/*
The number of items, counted as `jobworker indexed` counts them: the entries of `items`, or the
lines of `itemsFile` that are not empty once a trailing CR is dropped (blank lines are skipped).
*/}}
{{- define "indexed-job.itemCount" -}}
{{- if .Values.items }}
{{- len .Values.items }}
{{- else }}
{{- $count := 0 }}
{{- range splitList "\n" (.Values.itemsFile | default "") }}
{{- if trimSuffix "\r" . }}
{{- $count = add1 $count }}
{{- end }}
{{- end }}
{{- $count }}
{{- end }}
{{- end }}

{{/* The Job's completions: the number of items, else the `completions` value (0 when neither). */}}
{{- define "indexed-job.completions" -}}
{{- if include "indexed-job.hasItems" . }}
{{- include "indexed-job.itemCount" . }}
{{- else }}
{{- .Values.completions | default 0 | int }}
{{- end }}
{{- end }}

{{/* The items file in the ConfigMap: a JSON array for `items`, text lines for `itemsFile`. */}}
{{- define "indexed-job.itemsKey" -}}
{{- if .Values.items }}items.json{{ else }}items.txt{{ end }}
{{- end }}

{{/* Its format, told to the worker rather than guessed from the name. */}}
{{- define "indexed-job.itemsFormat" -}}
{{- if .Values.items }}json{{ else }}lines{{ end }}
{{- end }}

{{- define "indexed-job.itemsDir" -}}
/etc/jobworker/items
{{- end }}

{{/* Where the downward API volume with the completion index is mounted, and its file. */}}
{{- define "indexed-job.indexDir" -}}
/etc/jobworker/index
{{- end }}

{{- define "indexed-job.indexFile" -}}
{{ include "indexed-job.indexDir" . }}/completion-index
{{- end }}

{{/*
Which container reads the index and the items: "input" (the init container of the
init-container variant), or "worker" (the worker image; or your image without items, which then
reads the index itself).
*/}}
{{- define "indexed-job.indexReader" -}}
{{- if and (include "indexed-job.programImageMode" .) (include "indexed-job.hasItems" .) }}input{{ else }}worker{{ end }}
{{- end }}

{{/* The directory of itemPath: the mount path of the emptyDir shared by "input" and "worker". */}}
{{- define "indexed-job.inputDir" -}}
{{- dir .Values.itemPath }}
{{- end }}

{{/*
Per-index retries (backoffLimitPerIndex, maxFailedIndexes and the pod failure policy's FailIndex
action) and podReplacementPolicy came as alpha features in Kubernetes 1.28, off by default, and are
beta and on by default from 1.29 (feature gates JobBackoffLimitPerIndex and JobPodReplacementPolicy;
GA in 1.33 and 1.34). An API server whose gate is off drops the fields without a word, and 1.27
does not know them at all, so they are rendered from 1.29 on only: the chart says what it does
rather than what the cluster would ignore, and NOTES.txt says what is missing on older clusters.
*/}}
{{- define "indexed-job.perIndexSupported" -}}
{{- if semverCompare ">=1.29-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end }}

{{/*
successPolicy: alpha in Kubernetes 1.30 (feature gate JobSuccessPolicy, off by default), beta and
on by default from 1.31, GA in 1.33. Rendered from 1.31 on.
*/}}
{{- define "indexed-job.successPolicySupported" -}}
{{- if semverCompare ">=1.31-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end }}

{{/*
The label batch.kubernetes.io/job-completion-index on a Job's pods (feature gate PodIndexLabel:
beta and on by default from 1.28, GA in 1.32); before that only the annotation has the index.
NOTES.txt selects the logs of one index by it.
*/}}
{{- define "indexed-job.podIndexLabelSupported" -}}
{{- if semverCompare ">=1.28-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end }}

{{/* Whether backoffLimitPerIndex (and with it maxFailedIndexes, FailIndex) is rendered. */}}
{{- define "indexed-job.perIndex" -}}
{{- if and (include "indexed-job.perIndexSupported" .) (not (kindIs "invalid" .Values.backoffLimitPerIndex)) }}true{{ end }}
{{- end }}

{{/*
The rules of the pod failure policy as YAML ("" when none applies on this cluster). Kubernetes
applies the first rule that matches, so the disruption rule comes first: a pod that was evicted
counts for nothing, whatever exit code its program gave when it was stopped. Exit code rules look
at the "worker" container only, which runs your program in both variants. The OpenAPI schemas
of Kubernetes 1.27 and 1.28 still mark onPodConditions as required in every rule (Go clients always
send it, null when unused): there, exit code rules carry an empty list, which matches nothing.
*/}}
{{- define "indexed-job.podFailurePolicyRules" -}}
{{- $policy := .Values.podFailurePolicy }}
{{- $legacySchema := semverCompare "<1.29-0" .Capabilities.KubeVersion.Version }}
{{- if $policy.ignoreDisruptions }}
# Evicted, preempted or drained pods are replaced without counting against any limit.
- action: Ignore
  onPodConditions:
    - type: DisruptionTarget
      status: "True"
{{- end }}
{{- with $policy.failJobExitCodes }}
# Exit codes that end the whole Job at once; its condition names the rule and the code.
- action: FailJob
  onExitCodes:
    containerName: worker
    operator: In
    values:
      {{- toYaml . | nindent 6 }}
  {{- if $legacySchema }}
  onPodConditions: []
  {{- end }}
{{- end }}
{{- if and $policy.failIndexExitCodes (include "indexed-job.perIndex" .) }}
# A bad item: its index fails at once (listed in the Job's status.failedIndexes), no retry; the
# other indexes run on.
- action: FailIndex
  onExitCodes:
    containerName: worker
    operator: In
    values:
      {{- toYaml $policy.failIndexExitCodes | nindent 6 }}
  {{- if $legacySchema }}
  onPodConditions: []
  {{- end }}
{{- end }}
{{- end }}

{{/* The worker's logging options, as the environment variables `jobworker` reads. */}}
{{- define "indexed-job.logEnv" -}}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end }}

{{/*
Where `jobworker indexed` finds the index and the items. JOB_COMPLETION_INDEX is never set here:
the Job controller adds it to every container of an Indexed Job's pods, and would not if the
template already had it.
*/}}
{{- define "indexed-job.indexEnv" -}}
{{- if eq .Values.indexSource "downwardAPI" }}
- name: INDEX_FILE
  value: {{ include "indexed-job.indexFile" . | quote }}
{{- end }}
{{- include "indexed-job.itemsEnv" . }}
{{- end }}

{{/* The items file and its format, with items. */}}
{{- define "indexed-job.itemsEnv" -}}
{{- if include "indexed-job.hasItems" . }}
- name: ITEMS_FILE
  value: "{{ include "indexed-job.itemsDir" . }}/{{ include "indexed-job.itemsKey" . }}"
- name: ITEMS_FORMAT
  value: {{ include "indexed-job.itemsFormat" . | quote }}
{{- end }}
{{- end }}

{{/* The volume mounts of the container that reads the index and the items. */}}
{{- define "indexed-job.indexMounts" -}}
{{- if include "indexed-job.hasItems" . }}
- name: items
  mountPath: {{ include "indexed-job.itemsDir" . }}
  readOnly: true
{{- end }}
{{- if eq .Values.indexSource "downwardAPI" }}
- name: index
  mountPath: {{ include "indexed-job.indexDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
The placeholders of `command`/`args` that only `jobworker indexed` replaces, as found there (a
list, rendered as JSON).
*/}}
{{- define "indexed-job.placeholders" -}}
{{- $program := join " " (concat (.Values.command | default list) (.Values.args | default list)) }}
{{- $found := list }}
{{- range list "{item}" "{item_file}" "{index}" }}
{{- if contains . $program }}
{{- $found = append $found . }}
{{- end }}
{{- end }}
{{- toJson $found }}
{{- end }}

{{/*
Whether an index list of a success policy rule ("0-2,5") is well formed for this Job: intervals
in increasing order, not overlapping, each index below completions. dict "indexes" S "completions" N;
"true" or "".
*/}}
{{- define "indexed-job.indexesValid" -}}
{{- $valid := true }}
{{- $previous := -1 }}
{{- range splitList "," .indexes }}
{{- $bounds := splitList "-" . }}
{{- $first := index $bounds 0 | int }}
{{- $last := index $bounds (sub (len $bounds) 1) | int }}
{{- if or (le $first $previous) (lt $last $first) (ge $last (int $.completions)) }}
{{- $valid = false }}
{{- end }}
{{- $previous = $last }}
{{- end }}
{{- if $valid }}true{{ end }}
{{- end }}

{{/*
Every check between values that the schema cannot express, gathered so that one `helm install`
reports all of them at once, each naming the values involved.
*/}}
{{- define "indexed-job.validateValues" -}}
{{- $messages := list }}
{{- $hasItems := include "indexed-job.hasItems" . }}
{{- $programImage := include "indexed-job.programImageMode" . }}
{{- $completions := include "indexed-job.completions" . | int }}
{{- $placeholders := include "indexed-job.placeholders" . | fromJsonArray }}
{{- $program := join " " (concat (.Values.command | default list) (.Values.args | default list)) }}
{{- $policy := .Values.podFailurePolicy }}
{{- /* items */}}
{{- if and .Values.items .Values.itemsFile }}
{{- $messages = append $messages "items and itemsFile are both set: give the items in one of them" }}
{{- end }}
{{- if and .Values.itemsFile (not .Values.items) (eq (include "indexed-job.itemCount" . | int) 0) }}
{{- $messages = append $messages "itemsFile holds no item (only empty lines): give at least one line, or leave itemsFile empty" }}
{{- end }}
{{- if .Values.items }}
{{- if gt (len (toJson .Values.items)) 1000000 }}
{{- $messages = append $messages "items take more than 1000000 bytes as JSON, too much for a ConfigMap: split the work into several releases" }}
{{- end }}
{{- else if gt (len (.Values.itemsFile | default "")) 1000000 }}
{{- $messages = append $messages "itemsFile is larger than 1000000 bytes, too much for a ConfigMap: split the work into several releases" }}
{{- end }}
{{- /* completions */}}
{{- if $hasItems }}
{{- if and (not (kindIs "invalid" .Values.completions)) (ne (int .Values.completions) $completions) }}
{{- $messages = append $messages (printf "completions (%v) differs from the number of items (%d): leave completions empty, it is one index per item" .Values.completions $completions) }}
{{- end }}
{{- else if kindIs "invalid" .Values.completions }}
{{- $messages = append $messages "completions is required without items or itemsFile: how many indexes (0 to completions-1) should run?" }}
{{- end }}
{{- if gt $completions 0 }}
{{- $podName := printf "%s-%d" (include "indexed-job.fullname" .) (sub $completions 1) }}
{{- if gt (len $podName) 63 }}
{{- $messages = append $messages (printf "the Job's name %q is too long for %d indexes: Kubernetes names its pods' hosts <job>-<index>, 63 characters at most (%q); use a shorter release name or fullnameOverride" (include "indexed-job.fullname" .) $completions $podName) }}
{{- end }}
{{- end }}
{{- /* the program */}}
{{- if $programImage }}
{{- if not (or .Values.programImage.tag .Values.programImage.digest) }}
{{- $messages = append $messages "programImage.repository is set without programImage.tag or programImage.digest: give the image's tag (or digest)" }}
{{- end }}
{{- if ne .Values.delivery "auto" }}
{{- $messages = append $messages (printf "delivery is %q but programImage is set: with your own image the program reads its item from itemPath (%s), delivery applies to the worker image only" .Values.delivery .Values.itemPath) }}
{{- end }}
{{- if $placeholders }}
{{- $messages = append $messages (printf "command/args use %s but programImage is set: placeholders are replaced only in the worker image; your program reads its item from itemPath (%s) and its index from $JOB_COMPLETION_INDEX" (join ", " $placeholders) .Values.itemPath) }}
{{- end }}
{{- $inputDir := include "indexed-job.inputDir" . }}
{{- if or (eq $inputDir "/") (eq $inputDir "/tmp") (hasPrefix "/etc/jobworker" $inputDir) }}
{{- $messages = append $messages (printf "itemPath %q must be in a directory of its own, not /, /tmp or under /etc/jobworker (the chart mounts those)" .Values.itemPath) }}
{{- end }}
{{- else }}
{{- if or .Values.programImage.tag .Values.programImage.digest }}
{{- $messages = append $messages "programImage.tag or programImage.digest is set without programImage.repository" }}
{{- end }}
{{- if not .Values.command }}
{{- $messages = append $messages "command is empty: give the program the worker runs for each index (command: [prog, arg, ...]), or set programImage to run an image of your own" }}
{{- end }}
{{- if and .Values.args (not .Values.command) }}
{{- $messages = append $messages "args is set without command: args are appended to command" }}
{{- end }}
{{- if $hasItems }}
{{- if and (eq .Values.delivery "arg") (not (contains "{item}" $program)) }}
{{- $messages = append $messages "delivery is \"arg\" but no element of command/args contains {item}" }}
{{- end }}
{{- if and (eq .Values.delivery "file") (not (contains "{item_file}" $program)) }}
{{- $messages = append $messages "delivery is \"file\" but no element of command/args contains {item_file}" }}
{{- end }}
{{- else }}
{{- if ne .Values.delivery "auto" }}
{{- $messages = append $messages (printf "delivery is %q but there are no items: without items the program gets only its index ({index}, $JOB_COMPLETION_INDEX)" .Values.delivery) }}
{{- end }}
{{- range without $placeholders "{index}" }}
{{- $messages = append $messages (printf "command/args use %s but there are no items: give items or itemsFile, or use {index} and $JOB_COMPLETION_INDEX" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* per-index limits and the pod failure policy */}}
{{- if kindIs "invalid" .Values.backoffLimitPerIndex }}
{{- if not (kindIs "invalid" .Values.maxFailedIndexes) }}
{{- $messages = append $messages "maxFailedIndexes is set without backoffLimitPerIndex: failed indexes are counted only with a per-index limit" }}
{{- end }}
{{- if $policy.failIndexExitCodes }}
{{- $messages = append $messages "podFailurePolicy.failIndexExitCodes is set without backoffLimitPerIndex: Kubernetes fails an index (FailIndex) only with a per-index limit" }}
{{- end }}
{{- end }}
{{- if and (not (kindIs "invalid" .Values.maxFailedIndexes)) (gt $completions 0) (gt (int .Values.maxFailedIndexes) $completions) }}
{{- $messages = append $messages (printf "maxFailedIndexes (%v) is above completions (%d): Kubernetes requires at most one per index" .Values.maxFailedIndexes $completions) }}
{{- end }}
{{- if and (gt $completions 100000) (not (kindIs "invalid" .Values.backoffLimitPerIndex)) }}
{{- if or (kindIs "invalid" .Values.maxFailedIndexes) (gt (int .Values.maxFailedIndexes) 10000) (gt (int .Values.parallelism) 10000) }}
{{- $messages = append $messages (printf "completions (%d) is above 100000 with backoffLimitPerIndex: Kubernetes then requires maxFailedIndexes and parallelism of at most 10000 each" $completions) }}
{{- end }}
{{- end }}
{{- if and $policy.enabled (not $policy.failIndexExitCodes) (not $policy.failJobExitCodes) (not $policy.ignoreDisruptions) }}
{{- $messages = append $messages "podFailurePolicy.enabled is true but it has no rule: give podFailurePolicy.failIndexExitCodes or failJobExitCodes, set ignoreDisruptions, or disable it" }}
{{- end }}
{{- range $key := list "failIndexExitCodes" "failJobExitCodes" }}
{{- $previous := 0 }}
{{- range (get $policy $key | default list) }}
{{- if le (int .) $previous }}
{{- $messages = append $messages (printf "podFailurePolicy.%s must be in increasing order without repeats (Kubernetes requires it)" $key) }}
{{- end }}
{{- $previous = int . }}
{{- end }}
{{- end }}
{{- range $policy.failIndexExitCodes }}
{{- if has . ($policy.failJobExitCodes | default list) }}
{{- $messages = append $messages (printf "exit code %v is in both podFailurePolicy.failIndexExitCodes and failJobExitCodes: it either fails its index or the whole Job" .) }}
{{- end }}
{{- end }}
{{- if and $policy.enabled (ne .Values.podReplacementPolicy "Failed") }}
{{- $messages = append $messages (printf "podReplacementPolicy is %q but podFailurePolicy.enabled is true: Kubernetes allows only Failed with a pod failure policy" .Values.podReplacementPolicy) }}
{{- end }}
{{- /* the success policy */}}
{{- range $position, $rule := .Values.successPolicy.rules }}
{{- if and (hasKey $rule "succeededIndexes") (not (include "indexed-job.indexesValid" (dict "indexes" $rule.succeededIndexes "completions" $completions))) }}
{{- $messages = append $messages (printf "successPolicy.rules[%d].succeededIndexes %q must list indexes below completions (%d), intervals in increasing order without overlaps" $position $rule.succeededIndexes $completions) }}
{{- end }}
{{- if and (hasKey $rule "succeededCount") (gt (int $rule.succeededCount) $completions) }}
{{- $messages = append $messages (printf "successPolicy.rules[%d].succeededCount (%v) is above completions (%d)" $position $rule.succeededCount $completions) }}
{{- end }}
{{- end }}
{{- /* volumes */}}
{{- range .Values.extraVolumes }}
{{- if has .name (list "tmp" "items" "index" "input") }}
{{- $messages = append $messages (printf "extraVolumes has a volume named %q, a name the chart uses for its own volumes (tmp, items, index, input)" .name) }}
{{- end }}
{{- end }}
{{- if $messages }}
{{- fail (printf "\n\nVALUES VALIDATION:\n- %s" (join "\n- " $messages)) }}
{{- end }}
{{- end }}

{{/*
checkov annotations (checkov.io/skipN: ID=reason) for the checks this chart does not meet on
purpose, each only while the values make it true; dict "context" $ "test" BOOL.
*/}}
{{- define "indexed-job.checkovSkips" -}}
{{- $ := .context }}
{{- $skips := list }}
{{- $programImage := and (not .test) (include "indexed-job.programImageMode" $) }}
{{- if or (not $.Values.image.digest) (and $programImage (not $.Values.programImage.digest)) }}
{{- $skips = append $skips "CKV_K8S_43=images are referenced by their release tags; set image.digest (and programImage.digest) to pin digests" }}
{{- end }}
{{- if or (ne $.Values.image.pullPolicy "Always") (and $programImage (ne $.Values.programImage.pullPolicy "Always")) }}
{{- $skips = append $skips "CKV_K8S_15=release tags do not move, so the node's copy is used (IfNotPresent); set the pullPolicy values to Always to change it" }}
{{- end }}
{{- if .test }}
{{- $skips = append $skips "CKV_K8S_8=a helm test pod runs one command and exits: nothing to probe" }}
{{- $skips = append $skips "CKV_K8S_9=a helm test pod runs one command and exits: nothing to probe" }}
{{- end }}
{{- range $index, $skip := $skips }}
checkov.io/skip{{ add1 $index }}: {{ $skip | quote }}
{{- end }}
{{- end }}
