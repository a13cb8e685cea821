{{/*
The five services: what differs between them. `key` names their entry in .Values.services.
*/}}
{{- define "midplane.services" -}}
app-svc:
  key: appSvc
  desc: App and Component controllers, gRPC AppService
  grpc: 7000
  admin: 9000
  bus: true
  public: true
group-svc:
  key: groupSvc
  desc: "Group controller: renders plugins, applies, rolls out"
  grpc: 7000
  admin: 9000
  bus: true
  public: true
plugin-svc:
  key: pluginSvc
  desc: plugin registry and watcher, gRPC PluginRegistry
  grpc: 7000
  admin: 9000
  bus: true
  public: true
backup-svc:
  key: backupSvc
  desc: backups and restores, gRPC BackupService
  grpc: 7000
  admin: 9000
  bus: true
  public: true
agent-gateway:
  key: agentGateway
  desc: fan-out of agent calls to the Pods of a Group
  grpc: 50060
  admin: 9060
  bus: false
  public: false
{{- end -}}

{{/* The order the objects come out in (kustomize's order within a kind is by name). */}}
{{- define "midplane.order" -}}
[agent-gateway, app-svc, backup-svc, group-svc, plugin-svc]
{{- end -}}

{{- define "midplane.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: midplane
{{- end -}}

{{/* Common labels plus Helm's own, for metadata (never selectors). */}}
{{- define "midplane.metaLabels" -}}
{{ include "midplane.labels" . }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "midplane.partOfLabels" -}}
app.kubernetes.io/part-of: midplane
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "midplane.image" -}}
{{ .root.Values.image.registry }}/{{ .image }}:{{ .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- end -}}

{{/* Each service's configuration file (the environment can override any key). */}}
{{- define "midplane.config" -}}
{{- $ns := .root.Release.Namespace -}}
{{- if eq .name "agent-gateway" -}}
server:
  grpc_addr: 0.0.0.0:50060
  admin_addr: 0.0.0.0:9060
  log:
    format: {{ .root.Values.log.format }}
  auth_token_file: /var/run/midplane/gateway-token/token
agents:
  token_file: /var/run/midplane/agent-token/token
resolver: kube
{{- else -}}
server:
  grpc_addr: 0.0.0.0:7000
  admin_addr: 0.0.0.0:9000
  log:
    format: {{ .root.Values.log.format }}
{{- if eq .name "backup-svc" }}
backup:
  secrets_dir: /etc/midplane/secrets
scheduler:
  enabled: true
  # Each due slot creates a Backup resource; the controller below runs it.
  mode: resources
  leader_election:
    namespace: {{ $ns }}
job:
  image: {{ include "midplane.image" (dict "root" .root "image" "midplane") }}
controller:
  enabled: true
  gateway_addr: http://agent-gateway.{{ $ns }}.svc:50060
  gateway_token_file: /var/run/midplane/gateway-token/token
{{- else if eq .name "plugin-svc" }}
kube:
  watch: true
  plugin_namespace: {{ $ns }}
{{- else }}
kube:
  plugin_namespace: {{ $ns }}
leader_election:
  namespace: {{ $ns }}
{{- end }}
{{- if eq .name "group-svc" }}
agent_gateway:
  addr: http://agent-gateway.{{ $ns }}.svc:50060
  token_file: /var/run/midplane/gateway-token/token
{{- end }}
{{- end }}
{{- end -}}

{{/* Labels of the monitoring objects: the suite's, plus monitoring.labels (e.g. the
release label a Prometheus Operator selects). */}}
{{- define "midplane.monitoringLabels" -}}
{{ include "midplane.partOfLabels" . }}
{{- with .Values.monitoring.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}
