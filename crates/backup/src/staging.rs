//! The staging directory a restore is unpacked into, and the swap that puts it in place of
//! the target only after everything has been verified.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What is wrong with a restore target; the message follows "restore target PATH: ".
#[derive(Debug, thiserror::Error)]
pub enum TargetProblem {
    #[error(
        "it is not empty ({count} {}, among them {example:?}): pass --force to replace its content, or give a new or empty directory",
        if *count == 1 { "entry" } else { "entries" }
    )]
    NotEmpty { count: usize, example: String },
    #[error("it exists and is not a directory")]
    NotADirectory,
    #[error("{doing}: {cause}")]
    Io { doing: String, cause: String },
    #[error("writing {entry:?}: {cause}")]
    Write { entry: String, cause: String },
}

fn io_problem(doing: impl Into<String>) -> impl FnOnce(io::Error) -> TargetProblem {
    let doing = doing.into();
    move |e| TargetProblem::Io {
        doing,
        cause: e.to_string(),
    }
}

/// Whether a restore into `target` would be refused without `--force`: `Err(NotEmpty)` when
/// it holds data (a volume's `lost+found` does not count), `Ok` when missing or empty.
pub fn check_restore_target(target: &Path) -> Result<(), TargetProblem> {
    Staging::check_target(target, false)
}

/// Where a restore is unpacked before it replaces the target.
pub(crate) struct Staging {
    pub(crate) dir: PathBuf,
    /// The target is a mount point (e.g. a PVC): stage inside it and swap entries, since a
    /// mount point cannot be renamed.
    inside: bool,
}

fn unique(base: &Path, stem: &str) -> PathBuf {
    base.join(format!("{stem}-{:08x}", rand::random::<u32>()))
}

impl Staging {
    /// Refuses a target that exists and is not an empty directory, unless `replace`.
    pub(crate) fn check_target(target: &Path, replace: bool) -> Result<(), TargetProblem> {
        let meta = match fs::symlink_metadata(target) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_problem("reading it")(e)),
        };
        if !meta.is_dir() {
            return Err(TargetProblem::NotADirectory);
        }
        if replace {
            return Ok(());
        }
        let mount = is_mount_point(target, &parent_of(target))?;
        let mut names = fs::read_dir(target)
            .and_then(|rd| {
                rd.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(io_problem("listing it"))?;
        names.retain(|n| !(mount && n == LOST_FOUND));
        names.sort();
        match names.first() {
            None => Ok(()),
            Some(first) => Err(TargetProblem::NotEmpty {
                count: names.len(),
                example: first.clone(),
            }),
        }
    }

    /// Checks the target (see [`Staging::check_target`]) and creates the staging directory.
    pub(crate) fn prepare(target: &Path, replace: bool) -> Result<Self, TargetProblem> {
        Self::check_target(target, replace)?;
        let name = target
            .file_name()
            .ok_or_else(|| TargetProblem::Io {
                doing: "naming the staging directory".into(),
                cause: "the path has no final component".into(),
            })?
            .to_string_lossy()
            .into_owned();
        let parent = parent_of(target);
        fs::create_dir_all(&parent).map_err(io_problem(format!(
            "creating its parent {}",
            parent.display()
        )))?;
        let inside = target.exists() && is_mount_point(target, &parent)?;
        let dir = if inside {
            unique(target, ".midplane-restore")
        } else {
            unique(&parent, &format!(".{name}.midplane-restore"))
        };
        fs::create_dir(&dir).map_err(io_problem(format!(
            "creating the staging directory {}",
            dir.display()
        )))?;
        Ok(Self { dir, inside })
    }

    pub(crate) fn discard(self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove restore staging directory");
        }
    }

    /// Puts the staged tree in place of `target`; on failure the target is as it was.
    pub(crate) fn commit(self, target: &Path) -> Result<(), TargetProblem> {
        let dir = self.dir.clone();
        let result = self.swap(target);
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result.map_err(io_problem("putting the restored tree in place"))
    }

    fn swap(self, target: &Path) -> io::Result<()> {
        if self.inside {
            return self.commit_inside(target);
        }
        if fs::symlink_metadata(target).is_err() {
            return fs::rename(&self.dir, target);
        }
        let parent = self.dir.parent().unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let old = unique(parent, &format!(".{name}.midplane-old"));
        fs::rename(target, &old)?;
        if let Err(e) = fs::rename(&self.dir, target) {
            // Put the original back: the target must never be left missing.
            let _ = fs::rename(&old, target);
            return Err(e);
        }
        if let Err(e) = fs::remove_dir_all(&old) {
            tracing::warn!(dir = %old.display(), error = %e, "could not remove the replaced tree");
        }
        Ok(())
    }

    fn commit_inside(self, target: &Path) -> io::Result<()> {
        let old = unique(target, ".midplane-old");
        fs::create_dir(&old)?;
        // (from, to) of every rename, undone in reverse if one fails.
        let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
        let result = (|| {
            for e in fs::read_dir(target)? {
                let p = e?.path();
                let name = p.file_name().unwrap_or_default();
                let keep = name == LOST_FOUND && !self.dir.join(LOST_FOUND).exists();
                if p != self.dir && p != old && !keep {
                    let to = old.join(name);
                    fs::rename(&p, &to)?;
                    done.push((p, to));
                }
            }
            for e in fs::read_dir(&self.dir)? {
                let p = e?.path();
                let to = target.join(p.file_name().unwrap_or_default());
                fs::rename(&p, &to)?;
                done.push((p, to));
            }
            Ok(())
        })();
        if let Err(e) = result {
            for (from, to) in done.into_iter().rev() {
                let _ = fs::rename(to, from);
            }
            let _ = fs::remove_dir(&old);
            return Err(e);
        }
        let _ = fs::remove_dir(&self.dir);
        if let Err(e) = fs::remove_dir_all(&old) {
            tracing::warn!(dir = %old.display(), error = %e, "could not remove the replaced tree");
        }
        Ok(())
    }
}

/// A filesystem's root (a PVC's, say) may hold `lost+found`; it is not content.
const LOST_FOUND: &str = "lost+found";

/// Whether `dir` is on another device than its parent: a mount point, which cannot be renamed.
fn is_mount_point(dir: &Path, parent: &Path) -> Result<bool, TargetProblem> {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| {
        fs::metadata(p)
            .map(|m| m.dev())
            .map_err(io_problem(format!("reading {}", p.display())))
    };
    // A bind mount of a directory of the same filesystem (a local-path volume, a process
    // pod's volume) keeps the device number: the kernel's mount table says it all.
    Ok(dev(dir)? != dev(parent)? || in_mount_table(dir))
}

/// `dir` is a mount point in `/proc/self/mountinfo` (field 5, octal escapes undone).
fn in_mount_table(dir: &Path) -> bool {
    let (Ok(dir), Ok(table)) = (
        fs::canonicalize(dir),
        fs::read_to_string("/proc/self/mountinfo"),
    ) else {
        return false;
    };
    let dir = dir.to_string_lossy();
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_octal(m) == dir)
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parent_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_come_from_the_kernel_table() {
        assert_eq!(unescape_octal(r"/mnt/with\040space"), "/mnt/with space");
        assert_eq!(unescape_octal(r"/plain"), "/plain");
        // /proc is mounted wherever this runs; a plain directory in it is not a mount point.
        assert!(in_mount_table(Path::new("/proc")));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!in_mount_table(dir.path()));
    }
}
