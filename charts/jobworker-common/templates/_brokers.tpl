{{/*
The shape the broker charts (redis, rabbitmq) share: one server pod of a StatefulSet, its
configuration in a ConfigMap (configmap.yaml), its data in an emptyDir or on a claim, and a
Service with a headless twin. Every object carries the component "server".
*/}}

{{/*
The StatefulSet: dict "context" $ "annotations" YAML (checkov's) "containers" YAML ["volumes" YAML]
(between config and tmp). A work queue needs one server, neither replicas nor a cluster. The
pod's annotation checksum/config restarts it when its configuration changes.
*/}}
{{- define "jobworker-common.brokers.statefulSet" -}}
{{- $ := .context }}
{{- $fullname := include "jobworker-common.names.fullname" $ -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ $fullname }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "jobworker-common.labels.standard" (dict "context" $ "component" "server") | nindent 4 }}
  {{- with (.annotations | trim) }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
spec:
  replicas: 1
  serviceName: {{ $fullname }}-headless
  selector:
    matchLabels:
      {{- include "jobworker-common.labels.matchLabels" (dict "context" $ "component" "server") | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "jobworker-common.labels.pod" (dict "context" $ "component" "server") | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") $ | sha256sum }}
        {{- with $.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- include "jobworker-common.pods.spec" $ | nindent 6 }}
      terminationGracePeriodSeconds: {{ $.Values.terminationGracePeriodSeconds }}
      containers:
        {{- .containers | nindent 8 }}
      volumes:
        - name: config
          configMap:
            name: {{ $fullname }}
        {{- with .volumes }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- include "jobworker-common.pods.tmpVolume" $ | nindent 8 }}
        {{- if not $.Values.persistence.enabled }}
        - name: data
          emptyDir: {}
        {{- end }}
  {{- if $.Values.persistence.enabled }}
  volumeClaimTemplates:
    - apiVersion: v1
      kind: PersistentVolumeClaim
      metadata:
        name: data
        labels:
          {{- include "jobworker-common.labels.matchLabels" (dict "context" $ "component" "server") | nindent 10 }}
        {{- with $.Values.persistence.annotations }}
        annotations:
          {{- toYaml . | nindent 10 }}
        {{- end }}
      spec:
        accessModes:
          {{- toYaml $.Values.persistence.accessModes | nindent 10 }}
        {{- with $.Values.persistence.storageClass }}
        storageClassName: {{ if eq . "-" }}""{{ else }}{{ . }}{{ end }}
        {{- end }}
        resources:
          requests:
            storage: {{ $.Values.persistence.size }}
  {{- end }}
{{- end }}

{{/*
The Service clients connect to, and the StatefulSet's governing Service, which gives the pod the
stable name <full name>-0.<full name>-headless and needs the first port only: dict "context" $
"ports" LIST (of dict "name" NAME "port" PORT, the container port of that name).
*/}}
{{- define "jobworker-common.brokers.services" -}}
{{- $ := .context }}
{{- $fullname := include "jobworker-common.names.fullname" $ -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullname }}
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "jobworker-common.labels.standard" (dict "context" $ "component" "server") | nindent 4 }}
  {{- with $.Values.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $.Values.service.type }}
  selector:
    {{- include "jobworker-common.labels.matchLabels" (dict "context" $ "component" "server") | nindent 4 }}
  ports:
    {{- include "jobworker-common.brokers.servicePorts" .ports | trim | nindent 4 }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $fullname }}-headless
  namespace: {{ $.Release.Namespace }}
  labels:
    {{- include "jobworker-common.labels.standard" (dict "context" $ "component" "server") | nindent 4 }}
spec:
  clusterIP: None
  selector:
    {{- include "jobworker-common.labels.matchLabels" (dict "context" $ "component" "server") | nindent 4 }}
  ports:
    {{- include "jobworker-common.brokers.servicePorts" (list (first .ports)) | trim | nindent 4 }}
{{- end }}

{{- define "jobworker-common.brokers.servicePorts" -}}
{{- range . }}
- name: {{ .name }}
  port: {{ .port }}
  targetPort: {{ .name }}
  protocol: TCP
{{- end }}
{{- end }}

{{/* The timing fields of a probe, from its values block (livenessProbe, readinessProbe, ...). */}}
{{- define "jobworker-common.brokers.probeTimings" -}}
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}
