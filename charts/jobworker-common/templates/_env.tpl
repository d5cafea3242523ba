{{/*
The environment variables the `jobworker` commands read their options from, where the charts
share them.
*/}}

{{/* The log options every `jobworker` command reads from the environment. */}}
{{- define "jobworker-common.env.log" -}}
- name: LOG_FORMAT
  value: {{ .Values.logFormat | quote }}
- name: LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- end }}

{{/*
What every `jobworker` command on a queue reads from the environment besides where the broker is:
the queue, how long an unreachable broker is retried, the log options. dict "context" $ "queue"
NAME.
*/}}
{{- define "jobworker-common.env.queue" -}}
- name: QUEUE_NAME
  value: {{ .queue | quote }}
- name: CONNECT_TIMEOUT
  value: {{ .context.Values.connectTimeoutSeconds | quote }}
{{ include "jobworker-common.env.log" .context }}
{{- end }}
