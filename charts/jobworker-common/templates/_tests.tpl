{{/*
helm test pods. Each checks from inside the cluster what its chart set up, runs one command and
exits; it mounts no API token, reaches nothing through service links, and is deleted once it
passed (and before it runs again).
*/}}

{{/*
A test pod's metadata: dict "context" $ "name" SUFFIX (of the pod's name, after the full name)
"labels" YAML "annotations" YAML (checkov's, see _checkov.tpl).
*/}}
{{- define "jobworker-common.tests.metadata" -}}
name: {{ include "jobworker-common.names.fullname" .context }}-{{ .name }}
namespace: {{ .context.Release.Namespace }}
labels:
  {{- .labels | nindent 2 }}
annotations:
  helm.sh/hook: test
  helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
  {{- .annotations | trim | nindent 2 }}
{{- end }}

{{/*
A test pod's spec before its containers: dict "context" $ ["serviceAccount" BOOL] (whether it runs
as the chart's ServiceAccount, as the pods it checks do).
*/}}
{{- define "jobworker-common.tests.podSpec" -}}
restartPolicy: Never
{{- if .serviceAccount }}
serviceAccountName: {{ include "jobworker-common.names.serviceAccount" .context }}
{{- end }}
automountServiceAccountToken: false
enableServiceLinks: false
{{- with .context.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .context.Values.podSecurityContext | nindent 2 }}
{{- end }}

{{/*
The test pod of a queue chart (fine-queue-job, coarse-queue-job), run after the Job finished
(`kubectl wait --for=condition=complete`, or ct's --wait-for-jobs): `jobworker status` must reach the
queue with the credentials of the workers and find none of its `unfinished` counts above zero.
dict "context" $ "labels" YAML "annotations" YAML "env" YAML "unfinished" LIST.
*/}}
{{- define "jobworker-common.tests.queuePod" -}}
{{- $ := .context }}
{{- $unfinished := list }}
{{- range .unfinished }}
{{- $unfinished = append $unfinished (quote .) }}
{{- end -}}
apiVersion: v1
kind: Pod
metadata:
  {{- include "jobworker-common.tests.metadata" (dict "context" $ "name" "test-queue" "labels" .labels "annotations" .annotations) | nindent 2 }}
spec:
  {{- include "jobworker-common.tests.podSpec" (dict "context" $ "serviceAccount" true) | nindent 2 }}
  containers:
    - name: status
      image: {{ include "jobworker-common.images.image" (dict "image" $.Values.image "chart" $.Chart) }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      command:
        - sh
        - -c
        - |
          status=$(jobworker status --json) || exit 1
          echo "$status"
          echo "$status" | python -c '
          import json, sys
          s = json.load(sys.stdin)
          unfinished = {k: s[k] for k in ({{ join ", " $unfinished }}) if s[k]}
          sys.exit("queue %s is not finished cleanly: %s" % (s["queue"], unfinished) if unfinished else 0)'
      env:
        {{- .env | nindent 8 }}
      {{- include "jobworker-common.pods.containerSecurityContext" $ | nindent 6 }}
      resources:
        requests:
          cpu: 10m
          memory: 32Mi
        limits:
          cpu: 200m
          memory: 128Mi
      volumeMounts:
        {{- include "jobworker-common.pods.tmpVolumeMount" $ | nindent 8 }}
  volumes:
    {{- include "jobworker-common.pods.tmpVolume" $ | nindent 4 }}
{{- end }}

