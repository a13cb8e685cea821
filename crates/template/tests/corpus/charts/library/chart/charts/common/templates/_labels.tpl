{{- define "common.labels" -}}
app.kubernetes.io/name: {{ .Values.name }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "common.deployment" -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Values.name }}
  labels:
    {{- include "common.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicas }}
{{- end -}}
{{- define "common.override" -}}
{{- $top := first . -}}
{{- $over := index . 1 | fromYaml -}}
{{- $base := include "common.deployment" $top | fromYaml -}}
{{- toYaml (merge $over $base) -}}
{{- end -}}
