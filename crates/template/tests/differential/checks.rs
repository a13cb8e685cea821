//! Checkers for outputs that differ on every run (keys, certificates, salted hashes): both
//! Helm's and Midplane's output must pass the same check by an outside tool, and what the check
//! reports about them must be equal.

use std::process::Command;

/// Runs checker `name` on Helm's and Midplane's output.
pub fn run(name: &str, helm: &str, ours: &str) -> Result<(), String> {
    let f: fn(&str) -> Result<String, String> = match name {
        other => return Err(format!("  unknown checker {other}\n")),
    };
    let w = f(helm).map_err(|e| format!("  helm output fails the {name} check: {e}\n"))?;
    let g = f(ours).map_err(|e| format!("  midplane output fails the {name} check: {e}\n"))?;
    if w != g {
        return Err(format!(
            "  {name} reports differ:\n  helm:     {w:?}\n  midplane: {g:?}\n"
        ));
    }
    Ok(())
}

#[allow(dead_code)]
fn tool(cmd: &str, args: &[&str], input: Option<&[u8]>) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if let Some(data) = input
        && let Some(mut stdin) = child.stdin.take()
    {
        stdin
            .write_all(data)
            .map_err(|e| format!("{cmd} stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
