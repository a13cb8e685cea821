{{- define "app.image" -}}
{{ .Values.global.registry }}/{{ . | typeOf }}
{{- end }}
