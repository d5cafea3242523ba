{{/*
Labels. They take dict "context" $ ["component" NAME]: a chart whose pods are all one component
(the brokers' "server") names it, and it is then part of every selector and every label set.
*/}}

{{/* Labels that select the chart's pods: they never change across upgrades. */}}
{{- define "jobworker-common.labels.matchLabels" -}}
app.kubernetes.io/name: {{ include "jobworker-common.names.name" .context }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Labels on every object of the chart; commonLabels come last. */}}
{{- define "jobworker-common.labels.standard" -}}
{{- $ := .context -}}
helm.sh/chart: {{ include "jobworker-common.names.chart" $ }}
{{ include "jobworker-common.labels.matchLabels" . }}
app.kubernetes.io/version: {{ $.Values.image.tag | default $.Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
app.kubernetes.io/part-of: jobworker
{{- with $.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of a pod: dict "context" $ "component" NAME ["labels" YAML]. podLabels, then the labels of
every object with that component, then `labels` (such as the one a broker's NetworkPolicy admits).
Merged as maps, so that a podLabels key repeating one of the chart's never renders a duplicate key.
*/}}
{{- define "jobworker-common.labels.pod" -}}
{{- $ := .context }}
{{- $standard := include "jobworker-common.labels.standard" (dict "context" $) | fromYaml }}
{{- $labels := mustMergeOverwrite (dict) ($.Values.podLabels | default dict) $standard (dict "app.kubernetes.io/component" .component) }}
{{- with .labels }}
{{- $labels = mustMergeOverwrite $labels (fromYaml .) }}
{{- end }}
{{- toYaml $labels }}
{{- end }}
