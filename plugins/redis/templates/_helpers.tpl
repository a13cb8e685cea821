{{/* Address of the instance that starts as primary, through the headless Service. */}}
{{- define "redis.primaryHost" -}}
{{ (index .Instances 0).Name }}.{{ include "redis.headless" . }}.{{ .Group.Namespace }}.svc
{{- end -}}

{{- define "redis.headless" -}}
{{ .Group.Name }}-headless
{{- end -}}

{{- define "redis.configMap" -}}
{{ .Group.Name }}-config
{{- end -}}

{{/* Environment both agents share. */}}
{{- define "redis.agentEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
# The Pod's own address. Every listener of the Pod binds it (not 0.0.0.0), so the
# same template also runs where Pods share one network (midplane dev's process pods);
# agent 2 announces it, and Redis announces it to its primary (replica-announce-ip).
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: MIDPLANE_INSTANCE
  value: {{ .Instance.Name | quote }}
- name: MIDPLANE_GROUP
  value: {{ .Group.Name | quote }}
- name: MIDPLANE_MIDDLEWARE_ADDR
  value: "$(POD_IP):{{ .Plugin.Ports.redis }}"
- name: MIDPLANE_CONFIG_PATH
  value: {{ .Plugin.ConfigPath | quote }}
- name: MIDPLANE_DATA_DIR
  value: /data
- name: MIDPLANE_SERVER__AUTH_TOKEN_FILE
  value: /var/run/midplane/agent/token
{{- end -}}
