{{/*
Value checks that the schema cannot express. Each chart gathers its checks, in its own order, in
one <chart>.validateValues, which its templates include first: one `helm install` then reports
every mistake at once, each message naming the values involved. A shared check renders a JSON
list of messages (empty when the values pass):

  {{- $messages = concat $messages (include "jobworker-common.validations.X" . | fromJsonArray) }}

and validations.fail reports the whole list.
*/}}

{{/* Fails the render with every message of the list, one per line; does nothing without any. */}}
{{- define "jobworker-common.validations.fail" -}}
{{- if . }}
{{- fail (printf "\n\nVALUES VALIDATION:\n- %s" (join "\n- " .)) }}
{{- end }}
{{- end }}

{{/* The items come in one value or the other, never in both. */}}
{{- define "jobworker-common.validations.itemsOrItemsFile" -}}
{{- $messages := list }}
{{- if and .Values.items .Values.itemsFile }}
{{- $messages = append $messages "items and itemsFile are both set: give the items in one of them" }}
{{- end }}
{{- toJson $messages }}
{{- end }}

{{/*
The items fit in the ConfigMap that carries them (1 MB, as every object in etcd): dict "context" $
"advice" TEXT, what to do instead.
*/}}
{{- define "jobworker-common.validations.itemsSize" -}}
{{- $ := .context }}
{{- $messages := list }}
{{- if $.Values.items }}
{{- if gt (len (toJson $.Values.items)) 1000000 }}
{{- $messages = append $messages (printf "items take more than 1000000 bytes as JSON, too much for a ConfigMap: %s" .advice) }}
{{- end }}
{{- else if gt (len ($.Values.itemsFile | default "")) 1000000 }}
{{- $messages = append $messages (printf "itemsFile is larger than 1000000 bytes, too much for a ConfigMap: %s" .advice) }}
{{- end }}
{{- toJson $messages }}
{{- end }}

{{/* args are appended to command: without command they have nothing to follow. */}}
{{- define "jobworker-common.validations.argsWithoutCommand" -}}
{{- $messages := list }}
{{- if and .Values.args (not .Values.command) }}
{{- $messages = append $messages "args is set without command: args are appended to command" }}
{{- end }}
{{- toJson $messages }}
{{- end }}

{{/* delivery arg and file put the item where the program's arguments say: {item}, {item_file}. */}}
{{- define "jobworker-common.validations.deliveryPlaceholder" -}}
{{- $messages := list }}
{{- $program := join " " (concat (.Values.command | default list) (.Values.args | default list)) }}
{{- if and (eq .Values.delivery "arg") (not (contains "{item}" $program)) }}
{{- $messages = append $messages "delivery is \"arg\" but no element of command/args contains {item}" }}
{{- end }}
{{- if and (eq .Values.delivery "file") (not (contains "{item_file}" $program)) }}
{{- $messages = append $messages "delivery is \"file\" but no element of command/args contains {item_file}" }}
{{- end }}
{{- toJson $messages }}
{{- end }}

{{/* Kubernetes allows a pod failure policy only with restartPolicy Never. */}}
{{- define "jobworker-common.validations.restartPolicy" -}}
{{- $messages := list }}
{{- if and (eq .Values.restartPolicy "OnFailure") .Values.podFailurePolicy.enabled }}
{{- $messages = append $messages "restartPolicy OnFailure cannot be combined with podFailurePolicy.enabled (Kubernetes requires restartPolicy Never for a pod failure policy): set podFailurePolicy.enabled=false, or keep restartPolicy Never" }}
{{- end }}
{{- toJson $messages }}
{{- end }}

{{/* The exit codes of a pod failure policy rule, podFailurePolicy.KEY: dict "context" $ "key" KEY. */}}
{{- define "jobworker-common.validations.exitCodesOrder" -}}
{{- $messages := list }}
{{- $previous := 0 }}
{{- range (get .context.Values.podFailurePolicy .key | default list) }}
{{- if le (int .) $previous }}
{{- $messages = append $messages (printf "podFailurePolicy.%s must be in increasing order without repeats (Kubernetes requires it)" $.key) }}
{{- end }}
{{- $previous = int . }}
{{- end }}
{{- toJson $messages }}
{{- end }}

{{/*
On SIGTERM the worker lets the program run graceSeconds more, then sends its process group SIGTERM
and, 5 s later (the worker's KILL_AFTER_TERM_SECONDS), SIGKILL, hands back what it holds and exits:
the kubelet must let it, so terminationGracePeriodSeconds must exceed graceSeconds + 5 (the
defaults, 20 and 30, leave 5 s to hand back): dict "context" $ "held" TEXT (what it hands back).
*/}}
{{- define "jobworker-common.validations.graceSeconds" -}}
{{- $values := .context.Values }}
{{- $messages := list }}
{{- if ge (addf (float64 $values.graceSeconds) 5) (float64 $values.terminationGracePeriodSeconds) }}
{{- $messages = append $messages (printf "graceSeconds (%v) must be below terminationGracePeriodSeconds (%v) by more than 5 s (at the end of graceSeconds the worker stops the program: SIGTERM, SIGKILL 5 s later), or the kubelet kills the worker before it hands %s back" $values.graceSeconds $values.terminationGracePeriodSeconds .held) }}
{{- end }}
{{- toJson $messages }}
{{- end }}

{{/*
A queue chart talks to the broker it bundles or to an external one, exactly one of them: dict
"context" $ "broker" CHART (its key, e.g. redis) "external" KEY (e.g. externalRedis) "product"
NAME (e.g. Redis) "credentials" TEXT (where the bundled broker's credentials are).
*/}}
{{- define "jobworker-common.validations.broker" -}}
{{- $bundled := index .context.Values .broker }}
{{- $external := index .context.Values .external }}
{{- $messages := list }}
{{- if and $bundled.enabled $external.host }}
{{- $messages = append $messages (printf "%s.enabled is true and %s.host is set: use the bundled %s or an external one, not both (set %s.enabled=false)" .broker .external .product .broker) }}
{{- end }}
{{- if and (not $bundled.enabled) (not $external.host) }}
{{- $messages = append $messages (printf "%s.enabled is false and %s.host is empty: the workers need a %s" .broker .external .product) }}
{{- end }}
{{- if and $bundled.enabled $external.existingSecret }}
{{- $messages = append $messages (printf "%s.existingSecret is set but the bundled %s is used (%s.enabled=true): %s" .external .product .broker .credentials) }}
{{- end }}
{{- toJson $messages }}
{{- end }}
