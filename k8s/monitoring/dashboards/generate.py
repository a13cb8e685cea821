#!/usr/bin/env python3
"""Writes Midplane's Grafana dashboards (suite.json, group.json, backups.json).

The JSON files are what Grafana loads (dashboards/kustomization provisions them
as ConfigMaps labelled grafana_dashboard=1); this script is how they are made,
so panels stay uniform. Run it after editing and commit both. The monitoring
test checks the JSON, and that every metric a panel queries is exported.
"""
import json
import pathlib

HERE = pathlib.Path(__file__).parent
DS = {"type": "prometheus", "uid": "${datasource}"}


def var(name, query, label, multi=True):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": name}, "definition": query,
        "refresh": 2, "includeAll": multi, "multi": multi, "sort": 1,
        "current": {"text": "All", "value": "$__all"} if multi else {},
    }


DATASOURCE = {"name": "datasource", "label": "Data source", "type": "datasource",
              "query": "prometheus", "current": {}}


class Board:
    def __init__(self, uid, title, description, variables):
        self.uid, self.title, self.description = uid, title, description
        self.variables = [DATASOURCE] + variables
        self.panels, self.y, self.x, self.row_h = [], 0, 0, 0
        self.next_id = 1

    def row(self, title):
        self.newline()
        self.panels.append({"type": "row", "title": title, "id": self.next_id, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.next_id += 1
        self.y += 1

    def newline(self):
        if self.x:
            self.y += self.row_h
            self.x, self.row_h = 0, 0

    def panel(self, kind, title, targets, unit="short", w=8, h=8, description="", **extra):
        if self.x + w > 24:
            self.newline()
        p = {
            "type": kind, "title": title, "id": self.next_id, "datasource": DS,
            "description": description,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [
                {"refId": chr(65 + i), "datasource": DS, "expr": expr, "legendFormat": legend}
                for i, (expr, legend) in enumerate(targets)
            ],
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        }
        p.update(extra)
        self.panels.append(p)
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)

    def json(self):
        return {
            "uid": self.uid, "title": self.title, "description": self.description,
            "tags": ["midplane"], "timezone": "browser", "schemaVersion": 39, "version": 1,
            "editable": True, "refresh": "30s", "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": self.variables}, "annotations": {"list": []},
            "panels": self.panels,
        }


def suite():
    b = Board("midplane-suite", "Midplane / Suite",
              "The suite's services: reconciles, leaders, gRPC, the event bus.",
              [var("namespace", "label_values(midplane_build_info, namespace)", "Namespace", multi=False),
               var("service", 'label_values(midplane_build_info{namespace="$namespace"}, service)', "Service")])
    sel = 'namespace="$namespace", service=~"$service"'
    b.row("Controllers")
    b.panel("timeseries", "Reconciles per second", [
        (f'sum by (service, controller, result) (rate(midplane_reconcile_total{{{sel}}}[$__rate_interval]))',
         "{{controller}} {{result}}")], unit="ops")
    b.panel("timeseries", "Reconcile errors by category", [
        (f'sum by (controller, category) (rate(midplane_reconcile_errors_total{{{sel}}}[$__rate_interval]))',
         "{{controller}} {{category}}")], unit="ops",
        description="The category is also the Warning Event's reason.")
    b.panel("timeseries", "Reconcile latency (p50, p99)", [
        (f'histogram_quantile(0.5, sum by (controller, le) (rate(midplane_reconcile_duration_seconds_bucket{{{sel}}}[$__rate_interval])))',
         "{{controller}} p50"),
        (f'histogram_quantile(0.99, sum by (controller, le) (rate(midplane_reconcile_duration_seconds_bucket{{{sel}}}[$__rate_interval])))',
         "{{controller}} p99")], unit="s")
    b.panel("stat", "Leading replicas", [
        (f'sum by (service) (midplane_controller_leader{{{sel}}})', "{{service}}")], w=8, h=5,
        description="1 per controller service; 0 means nothing reconciles.")
    b.panel("stat", "Replicas up", [
        (f'sum by (service) (up{{job="midplane-services", namespace="$namespace"}})', "{{service}}")], w=8, h=5)
    b.panel("stat", "Version", [
        (f'max by (service, version) (midplane_build_info{{{sel}}})', "{{service}} {{version}}")], w=8, h=5)
    b.row("gRPC")
    b.panel("timeseries", "Calls per second by code", [
        (f'sum by (grpc_service, grpc_code) (rate(midplane_grpc_server_handled_total{{{sel}}}[$__rate_interval]))',
         "{{grpc_service}} {{grpc_code}}")], unit="reqps", w=12)
    b.panel("timeseries", "Call latency p99 by method", [
        (f'histogram_quantile(0.99, sum by (grpc_method, le) (rate(midplane_grpc_server_handling_seconds_bucket{{{sel}}}[$__rate_interval])))',
         "{{grpc_method}}")], unit="s", w=12)
    b.panel("timeseries", "Gateway calls to agents", [
        (f'sum by (method, outcome) (rate(midplane_gateway_requests_total{{{sel}}}[$__rate_interval]))',
         "{{method}} {{outcome}}")], unit="reqps", w=12)
    b.panel("timeseries", "TLS certificate expiry", [
        (f'midplane_tls_certificate_expiry_timestamp_seconds{{{sel}}} - time()', "{{service}} {{certificate}}")],
        unit="s", w=12)
    b.row("Event bus")
    b.panel("timeseries", "Published and consumed", [
        (f'sum by (service) (rate(midplane_bus_published_total{{{sel}}}[$__rate_interval]))', "{{service}} published"),
        (f'sum by (service) (rate(midplane_bus_consumed_total{{{sel}}}[$__rate_interval]))', "{{service}} consumed")],
        unit="ops")
    b.panel("timeseries", "Retries, dead letters, drops", [
        (f'sum by (service) (rate(midplane_bus_retried_total{{{sel}}}[$__rate_interval]))', "{{service}} retried"),
        (f'sum by (service) (rate(midplane_bus_dead_lettered_total{{{sel}}}[$__rate_interval]))', "{{service}} dead-lettered"),
        (f'sum by (service) (rate(midplane_bus_sink_dropped_total{{{sel}}}[$__rate_interval]))', "{{service}} dropped"),
        (f'sum by (service) (rate(midplane_bus_publish_failed_total{{{sel}}}[$__rate_interval]))', "{{service}} publish failed")],
        unit="ops")
    b.panel("timeseries", "Queue depth (RabbitMQ)", [
        ('sum by (queue) (rabbitmq_detailed_queue_messages{queue=~"midplane\\\\..*"})', "{{queue}}")],
        description="From RabbitMQ's own exporter (rabbitmq_prometheus, per-object metrics).")
    b.panel("timeseries", "Handler latency p99", [
        (f'histogram_quantile(0.99, sum by (subscriber, le) (rate(midplane_bus_handler_duration_seconds_bucket{{{sel}}}[$__rate_interval])))',
         "{{subscriber}}")], unit="s")
    b.panel("timeseries", "Broker reconnects", [
        (f'sum by (service) (increase(midplane_bus_reconnects_total{{{sel}}}[$__rate_interval]))', "{{service}}")])
    return b


def group():
    b = Board("midplane-group", "Midplane / Group",
              "One replication Group: roles and terms, load, memory, replication, restarts, reloads, failovers.",
              [var("namespace", "label_values(midplane_middleware_up, namespace)", "Namespace", multi=False),
               var("app", 'label_values(midplane_middleware_up{namespace="$namespace"}, app)', "App", multi=False),
               var("group", 'label_values(midplane_middleware_up{namespace="$namespace", app="$app"}, group)', "Group")])
    sel = 'namespace="$namespace", app="$app", group=~"$group"'
    b.row("Roles")
    b.panel("stat", "Primaries", [(f'sum by (group) (midplane_middleware_role{{{sel}, role="primary"}})', "{{group}}")],
            w=6, h=5, description="Exactly 1 per Group; 0 or 2 is an alert.")
    b.panel("stat", "Instances up", [(f'sum by (group) (midplane_middleware_up{{{sel}}})', "{{group}}")], w=6, h=5)
    b.panel("stat", "Term", [(f'max by (group) (midplane_middleware_term{{{sel}}})', "{{group}}")], w=6, h=5)
    b.panel("stat", "Failovers and switchovers (24h)", [
        (f'changes(midplane:group_term:max{{{sel}}}[24h])', "{{group}}")], w=6, h=5)
    b.panel("state-timeline", "Role over time", [
        (f'max by (instance_name, role) (midplane_middleware_role{{{sel}}}) == 1', "{{instance_name}} {{role}}")], w=24)
    b.row("Load")
    b.panel("timeseries", "Operations per second", [
        (f'sum by (instance_name) (rate(midplane_middleware_commands_processed_total{{{sel}}}[$__rate_interval]))', "{{instance_name}}")],
        unit="ops")
    b.panel("timeseries", "Hit ratio", [
        (f'sum by (instance_name) (rate(midplane_middleware_keyspace_hits_total{{{sel}}}[$__rate_interval])) / '
         f'(sum by (instance_name) (rate(midplane_middleware_keyspace_hits_total{{{sel}}}[$__rate_interval])) + '
         f'sum by (instance_name) (rate(midplane_middleware_keyspace_misses_total{{{sel}}}[$__rate_interval])))',
         "{{instance_name}}")], unit="percentunit")
    b.panel("timeseries", "Connected clients", [
        (f'midplane_middleware_connected_clients{{{sel}}}', "{{instance_name}}")])
    b.panel("timeseries", "Memory used and maxmemory", [
        (f'midplane_middleware_memory_used_bytes{{{sel}}}', "{{instance_name}} used"),
        (f'midplane_middleware_memory_max_bytes{{{sel}}}', "{{instance_name}} max")], unit="bytes")
    b.panel("timeseries", "Keys and evictions", [
        (f'sum by (instance_name) (midplane_middleware_db_keys{{{sel}}})', "{{instance_name}} keys"),
        (f'sum by (instance_name) (rate(midplane_middleware_evicted_keys_total{{{sel}}}[$__rate_interval]))', "{{instance_name}} evicted/s"),
        (f'sum by (instance_name) (rate(midplane_middleware_expired_keys_total{{{sel}}}[$__rate_interval]))', "{{instance_name}} expired/s")])
    b.row("Replication")
    b.panel("timeseries", "Replication offset", [
        (f'midplane_middleware_replication_offset_bytes{{{sel}}}', "{{instance_name}}")], unit="bytes")
    b.panel("timeseries", "Lag of the slowest replica", [
        (f'midplane_middleware_replication_lag_bytes{{{sel}}}', "{{instance_name}}")], unit="bytes")
    b.panel("timeseries", "Replica links up", [
        (f'midplane_middleware_primary_link_up{{{sel}}} and on (pod) midplane_middleware_role{{{sel}, role="replica"}} == 1',
         "{{instance_name}}")])
    b.row("Changes")
    b.panel("timeseries", "Restarts", [
        (f'resets(midplane_middleware_uptime_seconds{{{sel}}}[$__range])', "{{instance_name}}")],
        description="Times the middleware process started again in the shown range.")
    b.panel("timeseries", "Config reloads", [
        (f'sum by (instance_name, code) (increase(midplane_agent_rpc_total{{{sel}, method="ReloadConfig"}}[$__rate_interval]))',
         "{{instance_name}} {{code}}")])
    b.panel("timeseries", "Term changes", [
        (f'changes(midplane:group_term:max{{{sel}}}[$__rate_interval])', "{{group}}")],
        description="Each step is a switchover or a failover.")
    return b


def backups():
    b = Board("midplane-backups", "Midplane / Backups",
              "Backups per App component: duration, size, throughput, last success, failures.",
              [var("namespace", "label_values(midplane_backup_last_success_timestamp_seconds, namespace)", "Namespace", multi=False),
               var("app", 'label_values(midplane_backup_last_success_timestamp_seconds{namespace="$namespace"}, app)', "App")])
    sel = 'namespace="$namespace", app=~"$app"'
    b.panel("stat", "Since the last successful backup", [
        (f'time() - midplane_backup_last_success_timestamp_seconds{{{sel}}}', "{{app}}/{{component}}")],
        unit="s", w=12, h=5)
    b.panel("stat", "Failures (24h)", [
        (f'sum by (app, component, stage) (increase(midplane_backup_failures_total{{{sel}}}[24h]))', "{{app}}/{{component}} {{stage}}")],
        w=12, h=5)
    b.panel("timeseries", "Duration of the last backup", [
        (f'midplane_backup_last_duration_seconds{{{sel}}}', "{{app}}/{{component}}")], unit="s")
    b.panel("timeseries", "Stored size of the last backup", [
        (f'midplane_backup_last_size_bytes{{{sel}}}', "{{app}}/{{component}}")], unit="bytes")
    b.panel("timeseries", "Throughput of the last backup", [
        (f'midplane_backup_last_size_bytes{{{sel}}} / (midplane_backup_last_duration_seconds{{{sel}}} > 0)', "{{app}}/{{component}}")],
        unit="Bps")
    b.panel("timeseries", "Backups created and failed (suite)", [
        ('sum by (trigger) (increase(midplane_backups_created_total[$__rate_interval]))', "created {{trigger}}"),
        ('sum by (trigger) (increase(midplane_backups_failed_total[$__rate_interval]))', "failed {{trigger}}"),
        ('sum (increase(midplane_backups_deleted_total[$__rate_interval]))', "removed by retention")], w=12)
    b.panel("timeseries", "Restores", [
        ('sum (increase(midplane_restores_total[$__rate_interval]))', "restores"),
        ('sum (increase(midplane_restores_failed_total[$__rate_interval]))', "failed")], w=12)
    return b


for board, name in [(suite(), "suite"), (group(), "group"), (backups(), "backups")]:
    (HERE / f"{name}.json").write_text(json.dumps(board.json(), indent=2) + "\n")
