{{/*
The parts of the Job charts (fine-queue-job, coarse-queue-job, indexed-job) they have in common:
the Job's metadata and time limits, the annotations, worker container and volumes of its pods,
and the first step of their notes. The items they carry
are in _items.tpl, the rules of their pod failure policies in _podfailurepolicy.tpl.
*/}}

{{/* The Job's metadata: dict "context" $ "annotations" YAML (checkov's, see _checkov.tpl). */}}
{{- define "jobworker-common.jobs.metadata" -}}
name: {{ include "jobworker-common.names.fullname" .context }}
namespace: {{ .context.Release.Namespace }}
labels:
  {{- include "jobworker-common.labels.standard" (dict "context" .context) | nindent 2 }}
  app.kubernetes.io/component: worker
{{- with (.annotations | trim) }}
annotations:
  {{- . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
activeDeadlineSeconds and ttlSecondsAfterFinished, when set. Helm reads the numbers of a values
file as floats, which print as 1e+06 from a million on: int64 prints them as the integers they are.
*/}}
{{- define "jobworker-common.jobs.timeLimits" -}}
{{- if not (kindIs "invalid" .Values.activeDeadlineSeconds) }}
activeDeadlineSeconds: {{ .Values.activeDeadlineSeconds | int64 }}
{{- end }}
{{- if not (kindIs "invalid" .Values.ttlSecondsAfterFinished) }}
ttlSecondsAfterFinished: {{ .Values.ttlSecondsAfterFinished | int64 }}
{{- end }}
{{- end }}

{{/*
The annotations of the Job's pods: dict "context" $ "items" BOOL (whether the chart carries items).
A Job's pod template cannot change: with other items, `helm upgrade` fails at once instead of
leaving retried pods to work on a different list.
*/}}
{{- define "jobworker-common.jobs.podAnnotations" -}}
{{- $ := .context }}
{{- if .items }}
checksum/items: {{ include (print $.Template.BasePath "/configmap.yaml") $ | sha256sum }}
{{- end }}
{{- with $.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The worker container: dict "context" $ ["image" REFERENCE "pullPolicy" POLICY] (the worker image
by default) ["program" YAML] (its command and args, see programArgs) ["env" YAML] (before env)
["volumeMounts" YAML] (between tmp and extraVolumeMounts).
*/}}
{{- define "jobworker-common.jobs.workerContainer" -}}
{{- $ := .context }}
{{- $env := .env | default "" }}
{{- with $.Values.env }}
{{- $env = printf "%s\n%s" $env (toYaml .) }}
{{- end -}}
- name: worker
  image: {{ .image | default (include "jobworker-common.images.image" (dict "image" $.Values.image "chart" $.Chart)) }}
  imagePullPolicy: {{ .pullPolicy | default $.Values.image.pullPolicy }}
  {{- with .program | default "" | trim }}
  {{- . | nindent 2 }}
  {{- end }}
  {{- with ($env | trim) }}
  env:
    {{- . | nindent 4 }}
  {{- end }}
  {{- with $.Values.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $.Values.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- include "jobworker-common.pods.containerSecurityContext" $ | nindent 2 }}
  volumeMounts:
    {{- include "jobworker-common.pods.tmpVolumeMount" $ | nindent 4 }}
    {{- with .volumeMounts | default "" | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with $.Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/*
The arguments of a worker image that runs the user's program: the worker's own options come from
the environment, and everything after "--" is the program, command then args, passed as they are.
*/}}
{{- define "jobworker-common.jobs.programArgs" -}}
{{- if .Values.command -}}
args:
  - "--"
  {{- range concat .Values.command (.Values.args | default list) }}
  - {{ . | toString | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
The volumes of the Job's pods: dict "context" $ "items" BOOL ["volumes" YAML] (between the items
and extraVolumes).
*/}}
{{- define "jobworker-common.jobs.volumes" -}}
{{- $ := .context }}
{{- include "jobworker-common.pods.tmpVolume" $ }}
{{- if .items }}
- name: items
  configMap:
    name: {{ include "jobworker-common.names.fullname" $ }}-items
{{- end }}
{{- with .volumes }}
{{ . }}
{{- end }}
{{- with $.Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The first step of a Job chart's NOTES.txt, how to follow the Job: dict "context" $ ["watch" NOTE]
(a comment after the watch command).
*/}}
{{- define "jobworker-common.jobs.notesFollow" -}}
{{- $ns := .context.Release.Namespace }}
{{- $job := include "jobworker-common.names.fullname" .context -}}
1. Follow progress

    kubectl get job --namespace {{ $ns }} {{ $job }} --watch{{ with .watch }}       # {{ . }}{{ end }}
    kubectl wait --namespace {{ $ns }} --for=condition=complete --timeout=24h job/{{ $job }}
    # a Job that fails has condition Failed instead:  --for=condition=failed
{{- end }}
