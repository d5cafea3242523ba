{{/*
checkov annotations (checkov.io/skipN: ID=reason) for the checks a chart does not meet on purpose,
each only while the values make it true. A chart gathers its list in <chart>.checkovSkips (dict
"context" $ ["test" BOOL]), starting with imageSkips, and renders it with annotations.
*/}}

{{/* The skips of an image referenced by tag and pulled only when missing: dict "image" IMAGE_VALUES; a JSON list. */}}
{{- define "jobworker-common.checkov.imageSkips" -}}
{{- $skips := list }}
{{- if not .image.digest }}
{{- $skips = append $skips "CKV_K8S_43=the image is referenced by its release tag; set image.digest to pin a digest" }}
{{- end }}
{{- if ne .image.pullPolicy "Always" }}
{{- $skips = append $skips "CKV_K8S_15=release tags do not move, so the node's copy is used (IfNotPresent); set image.pullPolicy to Always to change it" }}
{{- end }}
{{- toJson $skips }}
{{- end }}

{{/*
The annotations of a list of skips: dict "skips" LIST ["test" BOOL]. A helm test pod (test) runs
one command and exits, so it also skips the probe checks.
*/}}
{{- define "jobworker-common.checkov.annotations" -}}
{{- $skips := .skips }}
{{- if .test }}
{{- $skips = concat $skips (list "CKV_K8S_8=a helm test pod runs one command and exits: nothing to probe" "CKV_K8S_9=a helm test pod runs one command and exits: nothing to probe") }}
{{- end }}
{{- range $index, $skip := $skips }}
checkov.io/skip{{ add1 $index }}: {{ $skip | quote }}
{{- end }}
{{- end }}
