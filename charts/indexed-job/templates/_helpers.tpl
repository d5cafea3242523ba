{{/*
The index and the item of each pod, the container that reads them, the Job fields of newer
Kubernetes versions, and validateValues and checkovSkips for this chart's values. The rest of the
Job, with its names and labels, comes from jobworker-common's helpers for the Job charts.
*/}}
{{- define "indexed-job.fullname" -}}{{ include "jobworker-common.names.fullname" . }}{{- end }}

{{/* Your program's image (init-container variant); validateValues requires a tag or a digest. */}}
{{- define "indexed-job.programImage" -}}
{{- include "jobworker-common.images.image" (dict "image" .Values.programImage) }}
{{- end }}

{{/* The command and args of your image's program, as given (init-container variant). */}}
{{- define "indexed-job.programCommand" -}}
{{- with .Values.command }}
command:
  {{- range . }}
  - {{ . | toString | quote }}
  {{- end }}
{{- end }}
{{- with .Values.args }}
args:
  {{- range . }}
  - {{ . | toString | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Whether the program runs in an image of the user's ("true" or ""): the init-container variant. */}}
{{- define "indexed-job.programImageMode" -}}
{{- if .Values.programImage.repository }}true{{ end }}
{{- end }}

{{/* The Job's completions: the number of items, else the `completions` value (0 when neither). */}}
{{- define "indexed-job.completions" -}}
{{- if include "jobworker-common.items.given" . }}
{{- include "jobworker-common.items.count" . }}
{{- else }}
{{- .Values.completions | default 0 | int }}
{{- end }}
{{- end }}

{{/* The format of the items file (see jobworker-common.items.key), told to the worker rather than guessed from the name. */}}
{{- define "indexed-job.itemsFormat" -}}
{{- if .Values.items }}json{{ else }}lines{{ end }}
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
{{- if and (include "indexed-job.programImageMode" .) (include "jobworker-common.items.given" .) }}input{{ else }}worker{{ end }}
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
{{ include "jobworker-common.podFailurePolicy.disruptionRule" . }}
{{- end }}
{{- with $policy.failJobExitCodes }}
# Exit codes that end the whole Job at once; its condition names the rule and the code.
{{ include "jobworker-common.podFailurePolicy.exitCodesRule" (dict "action" "FailJob" "codes" . "legacySchema" $legacySchema) }}
{{- end }}
{{- if and $policy.failIndexExitCodes (include "indexed-job.perIndex" .) }}
# A bad item: its index fails at once (listed in the Job's status.failedIndexes), no retry; the
# other indexes run on.
{{ include "jobworker-common.podFailurePolicy.exitCodesRule" (dict "action" "FailIndex" "codes" $policy.failIndexExitCodes "legacySchema" $legacySchema) }}
{{- end }}
{{- end }}

{{/*
Where the container that reads the index finds it and the items. JOB_COMPLETION_INDEX is never set
here: the Job controller adds it to every container of an Indexed Job's pods, and would not if the
template already had it.
*/}}
{{- define "indexed-job.indexEnv" -}}
{{- if eq .Values.indexSource "downwardAPI" }}
- name: INDEX_FILE
  value: {{ include "indexed-job.indexFile" . | quote }}
{{- end }}
{{- include "indexed-job.itemsEnv" . }}
{{- end }}

{{/*
The items of the init-container variant, one line per index: line N+1 holds item N in base64
(jobworker-common.items.base64Lines), which the init container "input" (jobworker-write-item in
the worker image) picks with sed, without starting Python.
*/}}
{{- define "indexed-job.itemsByIndex" -}}
{{- printf "%s\n" (include "jobworker-common.items.base64Lines" . | trimPrefix "\n") }}
{{- end }}

{{/* The items file as the init container "input" sees it (init-container variant). */}}
{{- define "indexed-job.itemsByIndexPath" -}}
{{ include "jobworker-common.items.dir" . }}/items.b64
{{- end }}

{{/*
The environment of the worker container: where the index and the items are when it reads them,
and in the worker image, how the program gets its item and the log options.
*/}}
{{- define "indexed-job.workerEnv" -}}
{{- if eq (include "indexed-job.indexReader" .) "worker" }}
{{- include "indexed-job.indexEnv" . }}
{{- end }}
{{- if not (include "indexed-job.programImageMode" .) }}
{{- if include "jobworker-common.items.given" . }}
- name: ITEM_DELIVERY
  value: {{ .Values.delivery | quote }}
{{- end }}
{{ include "jobworker-common.env.log" . }}
{{- end }}
{{- end }}

{{/*
The items file, with items: the base64 lines of jobworker-write-item in the init-container variant,
else the items file of `jobworker indexed` and its format.
*/}}
{{- define "indexed-job.itemsEnv" -}}
{{- if eq (include "indexed-job.indexReader" .) "input" }}
- name: ITEMS_FILE
  value: {{ include "indexed-job.itemsByIndexPath" . | quote }}
{{- else if include "jobworker-common.items.given" . }}
- name: ITEMS_FILE
  value: {{ include "jobworker-common.items.path" . | quote }}
- name: ITEMS_FORMAT
  value: {{ include "indexed-job.itemsFormat" . | quote }}
{{- end }}
{{- end }}

{{/* The volume mounts of the container that reads the index and the items. */}}
{{- define "indexed-job.indexMounts" -}}
{{- include "jobworker-common.items.volumeMount" . }}
{{- if eq .Values.indexSource "downwardAPI" }}
- name: index
  mountPath: {{ include "indexed-job.indexDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
The pods' volumes besides tmp, the items and extraVolumes: the index as a file, from the pod's
annotation (the Kubernetes docs' second variant), and the directory where the init container of
the first variant writes the item for your program.
*/}}
{{- define "indexed-job.volumes" -}}
{{- if eq .Values.indexSource "downwardAPI" }}
- name: index
  downwardAPI:
    items:
      - path: completion-index
        fieldRef:
          fieldPath: metadata.annotations['batch.kubernetes.io/job-completion-index']
{{- end }}
{{- if eq (include "indexed-job.indexReader" .) "input" }}
- name: input
  emptyDir: {}
{{- end }}
{{- end }}

{{/* The volume mounts of the worker container besides tmp and extraVolumeMounts. */}}
{{- define "indexed-job.workerMounts" -}}
{{- if eq (include "indexed-job.indexReader" .) "worker" }}
{{- include "indexed-job.indexMounts" . | trim }}
{{- else }}
- name: input
  mountPath: {{ include "indexed-job.inputDir" . }}
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

{{- define "indexed-job.validateValues" -}}
{{- $messages := list }}
{{- $hasItems := include "jobworker-common.items.given" . }}
{{- $programImage := include "indexed-job.programImageMode" . }}
{{- $completions := include "indexed-job.completions" . | int }}
{{- $placeholders := include "indexed-job.placeholders" . | fromJsonArray }}
{{- $policy := .Values.podFailurePolicy }}
{{- /* items */}}
{{- $messages = concat $messages (include "jobworker-common.validations.itemsOrItemsFile" . | fromJsonArray) }}
{{- if and .Values.itemsFile (not .Values.items) (eq (include "jobworker-common.items.count" . | int) 0) }}
{{- $messages = append $messages "itemsFile holds no item (only empty lines): give at least one line, or leave itemsFile empty" }}
{{- end }}
{{- $messages = concat $messages (include "jobworker-common.validations.itemsSize" (dict "context" . "advice" "split the work into several releases") | fromJsonArray) }}
{{- if and (eq (include "indexed-job.indexReader" .) "input") (gt (len (include "indexed-job.itemsByIndex" .)) 1000000) }}
{{- $messages = append $messages "the items take more than 1000000 bytes in base64, one line per index, as the init-container variant holds them in its ConfigMap: split the work into several releases" }}
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
{{- $messages = concat $messages (include "jobworker-common.validations.argsWithoutCommand" . | fromJsonArray) }}
{{- if $hasItems }}
{{- $messages = concat $messages (include "jobworker-common.validations.deliveryPlaceholder" . | fromJsonArray) }}
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
{{- $messages = concat $messages (include "jobworker-common.validations.exitCodesOrder" (dict "context" $ "key" $key) | fromJsonArray) }}
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
{{- include "jobworker-common.validations.fail" $messages }}
{{- end }}

{{/* The helm test pod (test) runs the worker image only, never programImage. */}}
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
{{- include "jobworker-common.checkov.annotations" (dict "skips" $skips "test" .test) }}
{{- end }}
