{{/*
The items a Job chart carries, in `items` (a list) or `itemsFile` (text, one item per line), and
the ConfigMap that holds them for the pods.
*/}}

{{/*
The ConfigMap of the items, mounted read-only into the pods that read them: dict "context" $
["key" NAME "text" TEXT] (another form of the items, under items.dir). By default `items` as a
JSON array (any string survives, newlines included), `itemsFile` verbatim with one item per line.
*/}}
{{- define "jobworker-common.items.configMap" -}}
{{- $ := .context -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "jobworker-common.names.fullname" $ }}-items
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "jobworker-common.labels.standard" (dict "context" $) | nindent 4 }}
data:
  {{- if .key }}
  {{ .key }}: {{ .text | quote }}
  {{- else if $.Values.items }}
  items.json: {{ toJson $.Values.items | quote }}
  {{- else }}
  items.txt: {{ $.Values.itemsFile | quote }}
  {{- end }}
{{- end }}

{{/* Whether the chart carries items, in `items` or in `itemsFile` ("true" or ""). */}}
{{- define "jobworker-common.items.given" -}}
{{- if or .Values.items .Values.itemsFile }}true{{ end }}
{{- end }}

{{/*
The number of items, counted as `jobworker` reads them: the entries of `items`, or the lines of
`itemsFile` that are not empty once a trailing CR is dropped (0 without items). items.base64Lines
splits them alike.
*/}}
{{- define "jobworker-common.items.count" -}}
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

{{/*
The items one per line in base64, each as `jobworker` reads it (see items.count): an entry of
`items` (a number as the text toJson gives it, which is how items.json holds it), or a line of
`itemsFile`. Any item, newlines included, is then one line. Written in one pass: a list built with
append would take quadratic time, minutes for a long itemsFile.
*/}}
{{- define "jobworker-common.items.base64Lines" -}}
{{- if .Values.items }}
{{- range .Values.items }}
{{ ternary . (toJson .) (kindIs "string" .) | b64enc }}
{{- end }}
{{- else }}
{{- range splitList "\n" (.Values.itemsFile | default "") }}
{{- with trimSuffix "\r" . }}
{{ b64enc . }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Where the pods mount the items, and the file of the ConfigMap that holds them. */}}
{{- define "jobworker-common.items.dir" -}}
/etc/jobworker/items
{{- end }}

{{- define "jobworker-common.items.key" -}}
{{- if .Values.items }}items.json{{ else }}items.txt{{ end }}
{{- end }}

{{/* The items file as the pods see it. */}}
{{- define "jobworker-common.items.path" -}}
{{ include "jobworker-common.items.dir" . }}/{{ include "jobworker-common.items.key" . }}
{{- end }}

{{/* The read-only mount of the items, when the chart carries items. */}}
{{- define "jobworker-common.items.volumeMount" -}}
{{- if include "jobworker-common.items.given" . }}
- name: items
  mountPath: {{ include "jobworker-common.items.dir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{/*
The environment of a queue chart's worker that seeds the queue with the items before it works
(`jobworker fine|coarse --seed-file`).
*/}}
{{- define "jobworker-common.items.seedFileEnv" -}}
- name: SEED_FILE
  value: {{ include "jobworker-common.items.path" . | quote }}
{{- end }}
