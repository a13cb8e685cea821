//! `GET …/pods/<name>/log` (`kubectl logs`): a container's log with `container`,
//! `previous`, `follow`, `timestamps`, `tailLines`, `limitBytes`, `sinceSeconds` and
//! `sinceTime`. Process pods serve their log files; simulated Pods have empty logs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use serde_json::Value;

use super::{Shared, is_true};
use crate::error::{ApiError, ApiResult};
use crate::kubelet::gr;
use crate::process::logs::{LogOpts, render, tail};
use crate::store::meta_str;

fn text_response(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    r
}

/// The instance of `container` whose log is asked for, and whether it may still grow.
fn instance(pod: &Value, container: &str, previous: bool) -> ApiResult<(u32, bool)> {
    let name = meta_str(pod, "name");
    let status = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .flat_map(|k| pod["status"][*k].as_array().into_iter().flatten())
        .find(|s| s["name"] == container);
    let Some(s) = status else {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        )));
    };
    let rc = s["restartCount"].as_u64().unwrap_or(0) as u32;
    if previous {
        let has_previous = rc > 0 && s["lastState"]["terminated"].is_object();
        if !has_previous {
            return Err(ApiError::bad_request(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        // Instance `rc` is the current one (running, or the last one while in back-off).
        return Ok((rc - 1, false));
    }
    if let Some(reason) = s["state"]["waiting"]["reason"].as_str()
        && s["lastState"]["terminated"].is_null()
    {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
        )));
    }
    Ok((rc, s["state"]["running"].is_object()))
}

/// Read whole lines of `path` from `offset`: the text and the new offset.
async fn read_lines(path: &PathBuf, offset: u64) -> (String, u64) {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    let Ok(mut f) = tokio::fs::File::open(path).await else {
        return (String::new(), offset);
    };
    if f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return (String::new(), offset);
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).await.is_err() {
        return (String::new(), offset);
    }
    let end = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(end);
    (
        String::from_utf8_lossy(&buf).into_owned(),
        offset + end as u64,
    )
}

pub async fn serve(
    shared: &Arc<Shared>,
    ns: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> ApiResult<Response> {
    let pod = shared
        .store
        .lock()
        .get(&gr("", "pods"), ns, name)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    let list = |k: &str| -> Vec<String> {
        pod["spec"][k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(String::from))
            .collect()
    };
    let names = list("containers");
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) => c.clone(),
        None if names.len() == 1 => names[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            )));
        }
    };
    if !names.contains(&container) && !list("initContainers").contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        )));
    }
    let Some(rt) = shared.kubelet.process.clone() else {
        // Simulated Pods run nothing, so they log nothing.
        return Ok(text_response(Body::empty()));
    };
    let previous = is_true(query.get("previous"));
    let (inst, live) = instance(&pod, &container, previous)?;
    let uid = meta_str(&pod, "uid").to_string();
    let path = rt.log_file(&uid, &container, inst);
    let since = query
        .get("sinceTime")
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .or_else(|| {
            query
                .get("sinceSeconds")
                .and_then(|s| s.parse::<i64>().ok())
                .map(|s| chrono::Utc::now() - chrono::Duration::seconds(s))
        });
    let opts = LogOpts {
        timestamps: is_true(query.get("timestamps")),
        since,
    };
    let mut at_start = true;
    let (text, offset) = read_lines(&path, 0).await;
    let mut first = render(&text, &opts, &mut at_start);
    if let Some(n) = query.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        first = tail(&first, n);
    }
    let limit = query
        .get("limitBytes")
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(mut l) = limit.filter(|l| *l < first.len()) {
        while !first.is_char_boundary(l) {
            l -= 1;
        }
        first.truncate(l);
    }
    if !(is_true(query.get("follow")) && live) || limit.is_some() {
        return Ok(text_response(Body::from(first)));
    }
    // Follow: the lines so far, then new ones until this instance has ended.
    let store = shared.store.clone();
    let stop = shared.shutdown.clone();
    let (ns, name) = (ns.to_string(), name.to_string());
    struct Follow {
        offset: u64,
        at_start: bool,
        ended: bool,
        first: Option<String>,
    }
    let state = Follow {
        offset,
        at_start,
        ended: false,
        first: Some(first),
    };
    let stream = futures::stream::unfold(state, move |mut st| {
        let (store, path, opts, ns, name, container, uid) = (
            store.clone(),
            path.clone(),
            opts.clone(),
            ns.clone(),
            name.clone(),
            container.clone(),
            uid.clone(),
        );
        let mut stop = stop.clone();
        async move {
            if let Some(f) = st.first.take() {
                return Some((Ok::<Bytes, std::io::Error>(Bytes::from(f)), st));
            }
            loop {
                let (text, off) = read_lines(&path, st.offset).await;
                st.offset = off;
                if !text.is_empty() {
                    let out = render(&text, &opts, &mut st.at_start);
                    return Some((Ok(Bytes::from(out)), st));
                }
                if st.ended || *stop.borrow() {
                    return None;
                }
                let pod = store.lock().get(&gr("", "pods"), &ns, &name);
                let still = pod.as_deref().is_some_and(|p| {
                    meta_str(p, "uid") == uid
                        && ["containerStatuses", "initContainerStatuses"]
                            .iter()
                            .flat_map(|k| p["status"][*k].as_array().into_iter().flatten())
                            .any(|s| {
                                s["name"] == container.as_str()
                                    && s["restartCount"].as_u64() == Some(u64::from(inst))
                                    && s["state"]["running"].is_object()
                            })
                });
                if !still {
                    // One last read for what the instance wrote before it ended.
                    st.ended = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    });
    Ok(text_response(Body::from_stream(stream)))
}
