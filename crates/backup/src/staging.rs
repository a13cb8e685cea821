//! The staging directory a restore is unpacked into, and the swap that puts it in place of
//! the target only after everything has been verified.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

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
    pub(crate) fn prepare(target: &Path) -> io::Result<Self> {
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "target has no name"))?
            .to_string_lossy()
            .into_owned();
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent)?;
        let inside = match fs::symlink_metadata(target) {
            Ok(m) if m.is_dir() => {
                use std::os::unix::fs::MetadataExt;
                m.dev() != fs::metadata(&parent)?.dev()
            }
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "target exists and is not a directory",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e),
        };
        let dir = if inside {
            unique(target, ".midplane-restore")
        } else {
            unique(&parent, &format!(".{name}.midplane-restore"))
        };
        fs::create_dir(&dir)?;
        Ok(Self { dir, inside })
    }

    pub(crate) fn discard(self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove restore staging directory");
        }
    }

    /// Puts the staged tree in place of `target`.
    pub(crate) fn commit(self, target: &Path) -> io::Result<()> {
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
        let mut moved = Vec::new();
        let result = (|| {
            for e in fs::read_dir(target)? {
                let p = e?.path();
                if p != self.dir && p != old {
                    let to = old.join(p.file_name().unwrap_or_default());
                    fs::rename(&p, &to)?;
                    moved.push((to, p));
                }
            }
            for e in fs::read_dir(&self.dir)? {
                let p = e?.path();
                fs::rename(&p, target.join(p.file_name().unwrap_or_default()))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            for (from, to) in moved {
                let _ = fs::rename(from, to);
            }
            return Err(e);
        }
        let _ = fs::remove_dir(&self.dir);
        if let Err(e) = fs::remove_dir_all(&old) {
            tracing::warn!(dir = %old.display(), error = %e, "could not remove the replaced tree");
        }
        Ok(())
    }
}
