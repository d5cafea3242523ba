{{/*
NetworkPolicies. The brokers admit only the pods that carry their client label; the jobs' own pods
only connect out, so nothing may connect to them.
*/}}

{{/*
The label a broker's NetworkPolicy admits: dict "broker" CHART "fullname" FULLNAME, the chart
(redis, rabbitmq) and the full name of its release's objects. The broker labels its own test pod
with it; a client chart computes the same pair for the broker it bundles (see
jobworker-common.names.dependencyFullname).
*/}}
{{- define "jobworker-common.networkPolicies.clientLabel" -}}
jobworker.github.io/{{ .broker }}-client: {{ .fullname }}
{{- end }}

{{/*
A NetworkPolicy that admits no incoming connection at all: dict "context" $ "name" NAME
["component" NAME] (of the chart's labels) ["podComponent" NAME] (of the pods it applies to;
without it, every pod of the chart).
*/}}
{{- define "jobworker-common.networkPolicies.denyIngress" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ .name }}
  namespace: {{ .context.Release.Namespace }}
  labels:
    {{- include "jobworker-common.labels.standard" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "jobworker-common.labels.matchLabels" (dict "context" .context "component" .podComponent) | nindent 6 }}
  policyTypes:
    - Ingress
{{- end }}

{{/*
A broker's NetworkPolicies, when networkPolicy.enabled: dict "context" $ "broker" CHART "ports"
LIST (of NetworkPolicyPort objects). Only pods with the client label, and the peers of
networkPolicy.extraIngressFrom, may open connections to the broker's pods, and only to `ports`;
the helm test pod accepts none.
*/}}
{{- define "jobworker-common.networkPolicies.broker" -}}
{{- $ := .context }}
{{- $fullname := include "jobworker-common.names.fullname" $ }}
{{- if $.Values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $fullname }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "jobworker-common.labels.standard" (dict "context" $ "component" "server") | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "jobworker-common.labels.matchLabels" (dict "context" $ "component" "server") | nindent 6 }}
  policyTypes:
    - Ingress
  ingress:
    - ports:
        {{- toYaml .ports | nindent 8 }}
      from:
        - podSelector:
            matchLabels:
              {{- include "jobworker-common.networkPolicies.clientLabel" (dict "broker" .broker "fullname" $fullname) | nindent 14 }}
        {{- with $.Values.networkPolicy.extraIngressFrom }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
{{- if $.Values.tests.enabled }}
---
{{ include "jobworker-common.networkPolicies.denyIngress" (dict "context" $ "name" (printf "%s-test" $fullname) "component" "server" "podComponent" "test") }}
{{- end }}
{{- end }}
{{- end }}
