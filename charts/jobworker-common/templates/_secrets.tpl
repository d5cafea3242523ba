{{/*
The Secret of a broker chart: its own, holding generated values, or the user's auth.existingSecret.
*/}}

{{/* The Secret holding the credentials: ours (the full name), or auth.existingSecret. */}}
{{- define "jobworker-common.secrets.name" -}}
{{- default (include "jobworker-common.names.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/*
The key of a credential in that Secret: dict "context" $ "existingKey" VALUE "key" KEY. KEY in
ours; in auth.existingSecret, the key auth.VALUE names.
*/}}
{{- define "jobworker-common.secrets.key" -}}
{{- if .context.Values.auth.existingSecret }}
{{- index .context.Values.auth .existingKey }}
{{- else }}
{{- .key }}
{{- end }}
{{- end }}

{{/*
A generated value of the Secret we own, base64-encoded: dict "context" $ "key" KEY "length" N. The
one already stored under KEY in the release's Secret (lookup, so that `helm upgrade` keeps it),
else N new random letters and digits. There is deliberately no value for a password in
values.yaml: bring your own through auth.existingSecret. `helm template` and `--dry-run` cannot
look up, so they show new values on every run.
*/}}
{{- define "jobworker-common.secrets.generatedB64" -}}
{{- $ := .context }}
{{- $existing := lookup "v1" "Secret" $.Release.Namespace (include "jobworker-common.names.fullname" $) }}
{{- $stored := "" }}
{{- if $existing }}
{{- $stored = index ($existing.data | default dict) .key | default "" }}
{{- end }}
{{- $stored | default (randAlphaNum (int .length) | b64enc) }}
{{- end }}
