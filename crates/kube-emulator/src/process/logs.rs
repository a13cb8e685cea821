//! Container logs: stdout and stderr of each container instance go to
//! `<pod dir>/logs/<container>/<restartCount>.log` in the CRI log format
//! (`<RFC3339Nano> <stdout|stderr> <F|P> <text>`), which the Pod `/log` subresource reads.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWriteExt as _, BufReader};
use tokio::sync::Mutex;

/// Longest line kept whole; longer ones are split into partial (`P`) entries.
const MAX_LINE: usize = 16 * 1024;

pub fn log_path(pod_dir: &Path, container: &str, instance: u32) -> PathBuf {
    pod_dir
        .join("logs")
        .join(container)
        .join(format!("{instance}.log"))
}

fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

async fn copy_stream(
    src: impl AsyncRead + Unpin,
    stream: &'static str,
    file: Arc<Mutex<tokio::fs::File>>,
) {
    let mut reader = BufReader::new(src);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = match (&mut reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "container log pipe");
                return;
            }
        };
        if n == 0 {
            return;
        }
        let full = buf.last() == Some(&b'\n');
        if full {
            buf.pop();
        }
        let mut line =
            format!("{} {stream} {} ", timestamp(), if full { 'F' } else { 'P' }).into_bytes();
        line.extend_from_slice(&buf);
        line.push(b'\n');
        if let Err(e) = file.lock().await.write_all(&line).await {
            tracing::warn!(error = %e, "writing a container log");
            return;
        }
    }
}

use tokio::io::AsyncReadExt as _;

/// Copy a child's stdout and stderr into its log file until both close.
pub async fn capture(
    path: PathBuf,
    stdout: Option<tokio::process::ChildStdout>,
    stderr: Option<tokio::process::ChildStderr>,
) {
    if let Some(parent) = path.parent()
        && let Err(e) = tokio::fs::create_dir_all(parent).await
    {
        tracing::warn!(error = %e, path = %path.display(), "container log directory");
        return;
    }
    let file = match tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .await
    {
        Ok(f) => Arc::new(Mutex::new(f)),
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "container log file");
            return;
        }
    };
    let out = async {
        if let Some(s) = stdout {
            copy_stream(s, "stdout", file.clone()).await;
        }
    };
    let err = async {
        if let Some(s) = stderr {
            copy_stream(s, "stderr", file.clone()).await;
        }
    };
    tokio::join!(out, err);
}

/// What `/log` was asked for.
#[derive(Clone, Debug, Default)]
pub struct LogOpts {
    pub timestamps: bool,
    /// Only entries at or after this RFC 3339 time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Render CRI log text (whole lines) as `kubectl logs` shows it.
pub fn render(text: &str, opts: &LogOpts, at_line_start: &mut bool) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut parts = line.splitn(4, ' ');
        let (Some(ts), Some(_stream), Some(tag), content) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next().unwrap_or_default(),
        ) else {
            continue;
        };
        if let Some(since) = opts.since
            && chrono::DateTime::parse_from_rfc3339(ts).is_ok_and(|t| t < since)
        {
            continue;
        }
        if opts.timestamps && *at_line_start {
            out.push_str(ts);
            out.push(' ');
        }
        out.push_str(content);
        *at_line_start = tag == "F";
        if *at_line_start {
            out.push('\n');
        }
    }
    out
}

/// The last `n` lines of rendered log text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines[lines.len().saturating_sub(n)..].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_render_as_kubectl_shows_them() {
        let text = "2026-01-01T00:00:00.1Z stdout F hello\n2026-01-01T00:00:01Z stderr P par\n2026-01-01T00:00:01Z stderr F tial\n";
        let mut start = true;
        assert_eq!(
            render(text, &LogOpts::default(), &mut start),
            "hello\npartial\n"
        );
        let mut start = true;
        let o = LogOpts {
            timestamps: true,
            ..LogOpts::default()
        };
        assert_eq!(
            render(text, &o, &mut start),
            "2026-01-01T00:00:00.1Z hello\n2026-01-01T00:00:01Z partial\n"
        );
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
    }
}
