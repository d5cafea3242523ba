{{/*
An image reference: dict "image" IMAGE_VALUES ["chart" .Chart]. repository@digest when a digest is
given, else repository:tag, the tag defaulting to the chart's appVersion when the chart is given.
*/}}
{{- define "jobworker-common.images.image" -}}
{{- if .image.digest }}
{{- printf "%s@%s" .image.repository .image.digest }}
{{- else }}
{{- $tag := .image.tag }}
{{- with .chart }}
{{- $tag = $tag | default .AppVersion }}
{{- end }}
{{- printf "%s:%s" .image.repository ($tag | toString) }}
{{- end }}
{{- end }}
