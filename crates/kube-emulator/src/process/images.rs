//! The image map: which local program runs for a container image (see `images.yaml` beside
//! this crate's Cargo.toml, the built-in default, for the format).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

const BUILTIN: &str = include_str!("../../images.yaml");
/// How the built-in map is named in messages.
pub const BUILTIN_SOURCE: &str =
    "the built-in image map (crates/kube-emulator/images.yaml; replace it with --image-map FILE)";

#[derive(Debug, thiserror::Error)]
pub enum ImageMapError {
    #[error("reading the image map {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing the image map {path}: {message}")]
    Parse { path: PathBuf, message: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    images: Vec<ImageEntry>,
}

/// One image of the map.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageEntry {
    pub image: String,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default = "default_search")]
    pub search: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub programs: Vec<String>,
}

fn default_search() -> Vec<String> {
    vec!["path".into()]
}

/// A program that an image of the map should provide and that is not found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingProgram {
    pub image: String,
    pub program: String,
    pub looked_in: Vec<PathBuf>,
}

/// The loaded map.
#[derive(Clone, Debug)]
pub struct ImageMap {
    source: String,
    base: Option<PathBuf>,
    entries: Vec<ImageEntry>,
}

/// `repository` and optional tag of an image reference, Docker Hub names normalised.
fn split(image: &str) -> (String, Option<String>) {
    let image = image.split('@').next().unwrap_or_default();
    let (repo, tag) = match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => (&image[..i], Some(image[i + 1..].to_string())),
        _ => (image, None),
    };
    let repo = repo
        .strip_prefix("docker.io/")
        .or_else(|| repo.strip_prefix("index.docker.io/"))
        .unwrap_or(repo);
    let repo = repo.strip_prefix("library/").unwrap_or(repo);
    (repo.to_string(), tag)
}

impl ImageMap {
    /// The built-in map (`images.yaml`).
    pub fn builtin() -> Self {
        Self::parse(BUILTIN, BUILTIN_SOURCE.into(), None)
            .unwrap_or_else(|e| panic!("the built-in image map does not parse: {e}"))
    }

    /// A map file.
    pub fn load(path: &Path) -> Result<Self, ImageMapError> {
        let text = std::fs::read_to_string(path).map_err(|source| ImageMapError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(
            &text,
            path.display().to_string(),
            path.parent().map(Into::into),
        )
        .map_err(|message| ImageMapError::Parse {
            path: path.into(),
            message,
        })
    }

    fn parse(text: &str, source: String, base: Option<PathBuf>) -> Result<Self, String> {
        let file: MapFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        for (i, e) in file.images.iter().enumerate() {
            if e.image.trim().is_empty() {
                return Err(format!("images[{i}].image is empty"));
            }
        }
        Ok(Self {
            source,
            base,
            entries: file.images,
        })
    }

    /// What messages call this map: its path, or the built-in default.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The entry for an image reference, if any.
    pub fn lookup(&self, image: &str) -> Option<&ImageEntry> {
        let (repo, tag) = split(image);
        self.entries.iter().find(|e| {
            let (r, t) = split(&e.image);
            r == repo && (t.is_none() || t == tag)
        })
    }

    /// The directories `entry.search` names, in order.
    pub fn search_dirs(&self, entry: &ImageEntry) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for s in &entry.search {
            match s.as_str() {
                "beside-executable" => {
                    if let Some(dir) = std::env::current_exe()
                        .ok()
                        .and_then(|e| e.parent().map(Path::to_path_buf))
                    {
                        if dir.file_name().is_some_and(|n| n == "deps")
                            && let Some(up) = dir.parent()
                        {
                            out.push(dir.clone());
                            out.push(up.to_path_buf());
                        } else {
                            out.push(dir);
                        }
                    }
                }
                "cargo-target" => out.extend(cargo_target_dirs()),
                "path" => {
                    if let Some(p) = std::env::var_os("PATH") {
                        out.extend(std::env::split_paths(&p));
                    }
                }
                dir => {
                    let p = PathBuf::from(dir);
                    out.push(match (&self.base, p.is_relative()) {
                        (Some(b), true) => b.join(p),
                        _ => p,
                    });
                }
            }
        }
        out
    }

    /// Find `program` for an image: an absolute path that exists, else its file name in
    /// the entry's search directories. `Err` lists where it looked.
    pub fn resolve(&self, entry: &ImageEntry, program: &str) -> Result<PathBuf, Vec<PathBuf>> {
        let p = Path::new(program);
        if p.is_absolute() && is_executable(p) {
            return Ok(p.into());
        }
        let name = p.file_name().map(PathBuf::from).unwrap_or_else(|| p.into());
        let dirs = self.search_dirs(entry);
        dirs.iter()
            .map(|d| d.join(&name))
            .find(|c| is_executable(c))
            .ok_or(dirs)
    }

    /// Every `programs` entry of the map that cannot be found.
    pub fn missing_programs(&self) -> Vec<MissingProgram> {
        let mut out = Vec::new();
        for e in &self.entries {
            for p in &e.programs {
                if let Err(looked_in) = self.resolve(e, p) {
                    out.push(MissingProgram {
                        image: e.image.clone(),
                        program: p.clone(),
                        looked_in,
                    });
                }
            }
        }
        out
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `$CARGO_TARGET_DIR/{debug,release}`, else those of the nearest `target/` beside a
/// Cargo.toml upward from the current directory.
fn cargo_target_dirs() -> Vec<PathBuf> {
    let root = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let cwd = std::env::current_dir().ok()?;
            cwd.ancestors()
                .find(|d| d.join("Cargo.toml").is_file() && d.join("target").is_dir())
                .map(|d| d.join("target"))
        });
    root.map(|r| vec![r.join("debug"), r.join("release")])
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_match_by_repository_and_optional_tag() {
        let map = ImageMap::builtin();
        assert!(map.lookup("redis:7.2").is_some());
        assert!(map.lookup("docker.io/library/redis:7.0").is_some());
        assert!(map.lookup("ghcr.io/midplane/agent:0.1.0").is_some());
        assert!(map.lookup("ghcr.io/midplane/other:1").is_none());
        assert!(map.lookup("localhost:5000/redis").is_none());
        let tagged = ImageMap::parse("images: [{image: 'x:1', cmd: [true]}]", "t".into(), None)
            .expect("parses");
        assert!(tagged.lookup("x:1").is_some() && tagged.lookup("x:2").is_none());
        assert!(ImageMap::parse("images: [{image: x, bogus: 1}]", "t".into(), None).is_err());
    }

    #[test]
    fn programs_resolve_on_path() {
        let map = ImageMap::builtin();
        let redis = map.lookup("busybox").expect("entry");
        assert!(map.resolve(redis, "sh").is_ok());
        let missing = map
            .resolve(redis, "no-such-program-here")
            .expect_err("missing");
        assert!(!missing.is_empty());
    }
}
