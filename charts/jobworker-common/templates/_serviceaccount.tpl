{{/*
The ServiceAccount of the chart's pods, when serviceAccount.create: dict "context" $ ["component"
NAME] (the component of the chart's labels, see _labels.tpl). The pods mount no API token unless
serviceAccount.automount: none of them talks to the Kubernetes API.
*/}}
{{- define "jobworker-common.serviceAccount" -}}
{{- $ := .context }}
{{- if $.Values.serviceAccount.create }}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "jobworker-common.names.serviceAccount" $ }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "jobworker-common.labels.standard" . | nindent 4 }}
  {{- with $.Values.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ $.Values.serviceAccount.automount }}
{{- end }}
{{- end }}
