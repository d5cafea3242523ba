{{/*
Pod spec fields every pod of a chart's workload has (`.`): its ServiceAccount and whether its token
is mounted, no service links (peers are found through DNS, and a namespace with many Services
would otherwise fill the environment), image pull Secrets, PriorityClass, the pod security
context, and where the pod may be scheduled.
*/}}
{{- define "jobworker-common.pods.spec" -}}
serviceAccountName: {{ include "jobworker-common.names.serviceAccount" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automount }}
enableServiceLinks: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* A container's security context: containerSecurityContext (`.`). */}}
{{- define "jobworker-common.pods.containerSecurityContext" -}}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end }}

{{/*
The tmp volume and its mount: every container runs with a read-only root filesystem, and /tmp is
the one place a program may write to without asking (Python, sh and redis-cli use it).
*/}}
{{- define "jobworker-common.pods.tmpVolume" -}}
- name: tmp
  emptyDir: {}
{{- end }}

{{- define "jobworker-common.pods.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}
