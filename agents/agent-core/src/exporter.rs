//! Agent 2's Prometheus exporter (:9090): the middleware's role, term,
//! replication, memory, load and keyspace, collected at scrape time, plus the
//! agent's own RPC counts. Names follow Prometheus conventions (`_total`,
//! `_bytes`, `_seconds`) so the scrape passes `promtool check metrics`.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::adapter::{Adapter, Role};
use crate::rpc_stats::RpcStats;

/// Longest a scrape waits for the middleware.
const COLLECT_TIMEOUT: Duration = Duration::from_secs(2);

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    fn one(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        base: &[(&str, &str)],
        value: impl std::fmt::Display,
    ) {
        self.head(name, kind, help);
        self.sample(name, base, value);
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Renders one scrape.
pub async fn render<A: Adapter>(adapter: &A, instance: &str, rpc: &RpcStats) -> String {
    let mut out = String::with_capacity(4096);
    let mut f = Family { out: &mut out };
    let kind = adapter.kind();
    let base = [("instance_name", instance), ("middleware", kind)];
    let role = tokio::time::timeout(COLLECT_TIMEOUT, adapter.role()).await;
    let stats = tokio::time::timeout(COLLECT_TIMEOUT, adapter.stats()).await;
    let up = matches!((&role, &stats), (Ok(Ok(_)), Ok(Ok(_))));
    f.one(
        "midplane_middleware_up",
        "gauge",
        "Whether the agent could collect figures from the middleware (1) or not (0).",
        &base,
        u8::from(up),
    );
    f.one(
        "midplane_middleware_term",
        "gauge",
        "Highest failover term this instance has accepted.",
        &base,
        adapter.term(),
    );
    if let Ok(Ok(r)) = &role {
        f.head(
            "midplane_middleware_role",
            "gauge",
            "1 for the role the instance holds, 0 for the others.",
        );
        for candidate in [Role::Primary, Role::Replica, Role::Fenced, Role::Unknown] {
            let labels = [base[0], base[1], ("role", candidate.as_str())];
            f.sample(
                "midplane_middleware_role",
                &labels,
                u8::from(candidate == r.role),
            );
        }
        f.one(
            "midplane_middleware_replication_offset_bytes",
            "gauge",
            "Replication offset of the instance.",
            &base,
            r.replication_offset,
        );
        f.one(
            "midplane_middleware_connected_replicas",
            "gauge",
            "Replicas connected and online (primary).",
            &base,
            r.replicas.iter().filter(|x| x.online).count(),
        );
        f.one(
            "midplane_middleware_replication_lag_bytes",
            "gauge",
            "Bytes the slowest replica is behind the primary (0 on replicas).",
            &base,
            r.max_replica_lag_bytes(),
        );
        f.one(
            "midplane_middleware_primary_link_up",
            "gauge",
            "Whether a replica's link to its primary is up (0 on a primary).",
            &base,
            u8::from(r.primary_link_up),
        );
    }
    if let Ok(Ok(s)) = &stats {
        let info = [base[0], base[1], ("version", s.version.as_str())];
        f.one(
            "midplane_middleware_info",
            "gauge",
            "Always 1; labels carry the middleware version.",
            &info,
            1,
        );
        f.one(
            "midplane_middleware_uptime_seconds",
            "gauge",
            "Seconds since the middleware started.",
            &base,
            s.uptime_seconds,
        );
        f.one(
            "midplane_middleware_memory_used_bytes",
            "gauge",
            "Memory used by the middleware.",
            &base,
            s.used_memory_bytes,
        );
        f.one(
            "midplane_middleware_memory_max_bytes",
            "gauge",
            "Configured memory limit (0: none).",
            &base,
            s.max_memory_bytes,
        );
        f.one(
            "midplane_middleware_connected_clients",
            "gauge",
            "Client connections.",
            &base,
            s.connected_clients,
        );
        f.one(
            "midplane_middleware_operations_per_second",
            "gauge",
            "Commands per second, as the middleware samples it.",
            &base,
            s.ops_per_second,
        );
        f.one(
            "midplane_middleware_commands_processed_total",
            "counter",
            "Commands processed since start.",
            &base,
            s.commands_processed_total,
        );
        f.one(
            "midplane_middleware_keyspace_hits_total",
            "counter",
            "Successful key lookups.",
            &base,
            s.keyspace_hits_total,
        );
        f.one(
            "midplane_middleware_keyspace_misses_total",
            "counter",
            "Failed key lookups.",
            &base,
            s.keyspace_misses_total,
        );
        f.one(
            "midplane_middleware_expired_keys_total",
            "counter",
            "Keys expired.",
            &base,
            s.expired_keys_total,
        );
        f.one(
            "midplane_middleware_evicted_keys_total",
            "counter",
            "Keys evicted by the memory policy.",
            &base,
            s.evicted_keys_total,
        );
        f.head("midplane_middleware_db_keys", "gauge", "Keys per database.");
        for (db, keys, _) in &s.keyspace {
            f.sample(
                "midplane_middleware_db_keys",
                &[base[0], base[1], ("db", db)],
                keys,
            );
        }
        f.head(
            "midplane_middleware_db_expiring_keys",
            "gauge",
            "Keys with an expiry per database.",
        );
        for (db, _, expiring) in &s.keyspace {
            f.sample(
                "midplane_middleware_db_expiring_keys",
                &[base[0], base[1], ("db", db)],
                expiring,
            );
        }
    }
    f.head(
        "midplane_agent_rpc_total",
        "counter",
        "Agent gRPC calls served, by method and status code.",
    );
    for ((method, code), n) in rpc.snapshot() {
        f.sample(
            "midplane_agent_rpc_total",
            &[base[0], ("method", method), ("code", code)],
            n,
        );
    }
    out
}

struct ExporterState<A: Adapter> {
    adapter: Arc<A>,
    instance: String,
    rpc: Arc<RpcStats>,
}

/// The exporter's HTTP routes: `/metrics`.
pub fn router<A: Adapter>(adapter: Arc<A>, instance: String, rpc: Arc<RpcStats>) -> Router {
    Router::new()
        .route("/metrics", get(scrape::<A>))
        .with_state(Arc::new(ExporterState {
            adapter,
            instance,
            rpc,
        }))
}

async fn scrape<A: Adapter>(State(s): State<Arc<ExporterState<A>>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&*s.adapter, &s.instance, &s.rpc).await,
    )
}

/// Serves the exporter on `listener` until `stop`.
pub async fn serve<A: Adapter>(
    listener: tokio::net::TcpListener,
    adapter: Arc<A>,
    instance: String,
    rpc: Arc<RpcStats>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(adapter, instance, rpc))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}
