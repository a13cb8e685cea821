{{- define "req.need" -}}
{{ required "needed inside a define" .Values.deep }}
{{- end -}}
