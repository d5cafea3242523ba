{{/*
The pod failure policy of the Job charts: when a cluster has it, and the rules they compose theirs of.
*/}}

{{/*
podFailurePolicy is beta and on by default from Kubernetes 1.26 (alpha behind a feature gate in
1.25, GA in 1.31), and the DisruptionTarget pod condition it matches became beta in 1.26 too. On
1.25 the API server would silently drop the field, so it is not rendered there: the chart says
what it does rather than what the cluster ignores. "true" or "".
*/}}
{{- define "jobworker-common.podFailurePolicy.supported" -}}
{{- if semverCompare ">=1.26-0" .Capabilities.KubeVersion.Version }}true{{ end }}
{{- end }}

{{/*
A pod failure policy rule on the exit codes of the worker container: dict "action" ACTION "codes"
LIST ["legacySchema" BOOL]. The OpenAPI schemas of Kubernetes 1.27 and 1.28 mark onPodConditions
as required in every rule (Go clients always send it, null when unused): for them (legacySchema)
the rule carries an empty list, which matches nothing.
*/}}
{{- define "jobworker-common.podFailurePolicy.exitCodesRule" -}}
- action: {{ .action }}
  onExitCodes:
    containerName: worker
    operator: In
    values:
      {{- toYaml .codes | nindent 6 }}
  {{- if .legacySchema }}
  onPodConditions: []
  {{- end }}
{{- end }}

{{/* The pod failure policy rule for evicted, preempted or drained pods: they count for nothing. */}}
{{- define "jobworker-common.podFailurePolicy.disruptionRule" -}}
- action: Ignore
  onPodConditions:
    - type: DisruptionTarget
      status: "True"
{{- end }}
