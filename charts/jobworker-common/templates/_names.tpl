{{/*
Names. Helpers that take `.` expect the root context of the chart that includes them: .Chart,
.Values and .Release are that chart's.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "jobworker-common.names.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-<name>, or just <release> when the release name
already contains the chart name; fullnameOverride wins. 63 characters at most (DNS label).
*/}}
{{- define "jobworker-common.names.fullname" -}}
{{- include "jobworker-common.names.fullnameOf" (dict "chart" .Chart.Name "values" .Values "release" .Release.Name) }}
{{- end }}

{{/*
The full name of a bundled (file://) dependency's objects, computed as that chart computes its
own from the values under its key: dict "context" $ "dependency" NAME. It is the host name of the
dependency's Service and the name of its Secret.
*/}}
{{- define "jobworker-common.names.dependencyFullname" -}}
{{- $values := index .context.Values .dependency | default dict }}
{{- include "jobworker-common.names.fullnameOf" (dict "chart" .dependency "values" $values "release" .context.Release.Name) }}
{{- end }}

{{/* The rule of the two above: dict "chart" NAME "values" VALUES "release" RELEASE_NAME. */}}
{{- define "jobworker-common.names.fullnameOf" -}}
{{- if .values.fullnameOverride }}
{{- .values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .chart .values.nameOverride }}
{{- if contains $name .release }}
{{- .release | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .release $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "jobworker-common.names.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ServiceAccount the chart's pods run as: the one it creates, or serviceAccount.name. */}}
{{- define "jobworker-common.names.serviceAccount" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "jobworker-common.names.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}
