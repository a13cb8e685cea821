//! Starting a container's processes: each runs in its own process group, mount namespace
//! (the Pod's volumes bind-mounted at their mountPaths, the Pod's /etc/hosts and
//! /etc/resolv.conf over the machine's) and UTS namespace (the Pod's hostname), as the
//! Pod's user, and dies with the emulator (`PR_SET_PDEATHSIG`).
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends, so every process
//! is forked by one long-lived spawner thread (not a tokio worker, which may exit while the
//! container runs). The thread ends when the runtime is dropped; its children then get
//! SIGKILL even if nothing else stopped them.
//!
//! Namespaces, mounts and credentials in the forked child are libc calls between fork and
//! exec, hence the unsafe blocks; each says why it holds.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// One bind mount of a container.
#[derive(Debug)]
pub struct Mount {
    pub source: CString,
    pub target: CString,
    pub read_only: bool,
}

/// Everything a container's processes (the main one, exec probes, preStop hooks) run inside.
#[derive(Debug)]
pub struct Sandbox {
    /// Ordered so that a mount point inside another mount comes after it.
    pub mounts: Vec<Mount>,
    pub hostname: CString,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub groups: Vec<libc::gid_t>,
    pub cwd: CString,
}

fn cstring(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other)
}

impl Sandbox {
    /// A sandbox for `mounts` (host path → container path, read-only), creating every
    /// missing mount point on this machine (empty, as a runtime creates it in an image).
    pub fn new(
        mounts: &[(PathBuf, PathBuf, bool)],
        hostname: &str,
        uid: Option<u32>,
        gid: Option<u32>,
        groups: Vec<u32>,
        cwd: &str,
    ) -> std::io::Result<Self> {
        let mut sorted: Vec<&(PathBuf, PathBuf, bool)> = mounts.iter().collect();
        sorted.sort_by_key(|(_, target, _)| target.components().count());
        let mut out = Vec::new();
        for (source, target, read_only) in sorted {
            if !target.exists() {
                if source.is_dir() {
                    std::fs::create_dir_all(target)?;
                } else {
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::File::create(target)?;
                }
            }
            // A mount point reached through a symlink (`/var/run` is `/run` on Debian) is
            // mounted where it leads, as the kernel resolves it.
            let target = std::fs::canonicalize(target)?;
            out.push(Mount {
                source: cstring(source)?,
                target: cstring(&target)?,
                read_only: *read_only,
            });
        }
        Ok(Self {
            mounts: out,
            hostname: CString::new(hostname).map_err(std::io::Error::other)?,
            uid,
            gid,
            groups,
            cwd: CString::new(cwd).map_err(std::io::Error::other)?,
        })
    }

    /// Runs in the forked child before exec: only async-signal-safe calls, no allocation.
    fn enter(&self, parent: libc::pid_t) -> std::io::Result<()> {
        let check = |r: libc::c_int| {
            if r == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        // SAFETY: plain syscalls on pointers to CStrings this sandbox owns; the child is
        // single-threaded here.
        unsafe {
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            // The spawner thread may have ended between fork and prctl.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            check(libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS))?;
            // Nothing mounted here may propagate back to the machine.
            check(libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for m in &self.mounts {
                check(libc::mount(
                    m.source.as_ptr(),
                    m.target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?;
                if m.read_only {
                    check(libc::mount(
                        std::ptr::null(),
                        m.target.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                        std::ptr::null(),
                    ))?;
                }
            }
            let name = self.hostname.as_bytes();
            check(libc::sethostname(name.as_ptr().cast(), name.len()))?;
            if self.uid.is_some() || self.gid.is_some() || !self.groups.is_empty() {
                check(libc::setgroups(self.groups.len(), self.groups.as_ptr()))?;
            }
            if let Some(g) = self.gid {
                check(libc::setgid(g))?;
            }
            if let Some(u) = self.uid {
                check(libc::setuid(u))?;
                // A change of credentials clears the parent-death signal.
                check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            }
            check(libc::chdir(self.cwd.as_ptr()))?;
        }
        Ok(())
    }
}

/// What to run.
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub sandbox: Arc<Sandbox>,
}

type Job = (
    tokio::process::Command,
    oneshot::Sender<std::io::Result<tokio::process::Child>>,
);

/// The one thread that forks every pod process, and the process groups alive.
pub struct Spawner {
    tx: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    groups: Mutex<std::collections::HashSet<i32>>,
}

impl Spawner {
    pub fn start() -> std::io::Result<Arc<Self>> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let handle = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("kubelet-spawner".into())
            .spawn(move || {
                // tokio's child reaping needs a runtime context at spawn time.
                let _guard = handle.enter();
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            })?;
        Ok(Arc::new(Self {
            tx: Mutex::new(Some(tx)),
            groups: Mutex::new(std::collections::HashSet::new()),
        }))
    }

    /// Start `spec`; stdout and stderr are pipes, stdin is /dev/null.
    pub async fn spawn(&self, spec: Spec) -> std::io::Result<tokio::process::Child> {
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        let sandbox = spec.sandbox.clone();
        // SAFETY: `std::process::id` is read here, before the fork.
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: `enter` only makes async-signal-safe syscalls on data owned by `sandbox`.
        unsafe {
            cmd.pre_exec(move || sandbox.enter(parent));
        }
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|tx| tx.send((cmd, reply)).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(std::io::Error::other("the kubelet is shutting down"));
        }
        let child = rx
            .await
            .map_err(|_| std::io::Error::other("the spawner thread ended"))??;
        if let Some(pid) = child.id() {
            self.groups
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(pid as i32);
        }
        Ok(child)
    }

    /// The process group ended (its leader was reaped): stop tracking it.
    pub fn forget(&self, pgid: i32) {
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&pgid);
    }

    /// Signal a whole process group.
    pub fn signal(pgid: i32, sig: libc::c_int) {
        if pgid > 0 {
            // SAFETY: kill(2) on a process group this spawner created.
            unsafe {
                libc::kill(-pgid, sig);
            }
        }
    }

    /// SIGKILL every live process group at once and stop spawning (the last resort when the
    /// emulator goes away without a graceful shutdown).
    pub fn kill_all(&self) {
        self.tx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let groups: Vec<i32> = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .collect();
        for g in groups {
            Self::signal(g, libc::SIGKILL);
        }
    }
}

/// Whether this process may create mount namespaces (process pods need it).
pub fn check_privileges() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(format!(
            "process pods need root (CAP_SYS_ADMIN for per-container mount namespaces, port 53 for the DNS responder); running as uid {euid}"
        ));
    }
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("exit 0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: unshare(2) only, in the child.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            if libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUTS) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let status = cmd.status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!(
            "a test process in a new mount namespace ended with {s}"
        )),
        Err(e) => Err(format!(
            "process pods need per-container mount namespaces, and unshare(CLONE_NEWNS) failed: {e}"
        )),
    }
}
