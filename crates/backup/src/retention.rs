//! Retention of backups by count and by age (the App's backup policy). Pure planning, so the
//! rule is testable; the caller deletes what the plan names.

use chrono::{DateTime, Duration, Utc};

use crate::manifest::Manifest;

/// Keep at most `keep_last` backups and none older than `max_age`; `None` disables a rule.
/// The newest complete backup is always kept, so a source whose backups stopped never loses
/// its last good one to the age rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub keep_last: Option<usize>,
    pub max_age: Option<Duration>,
}

/// Ids to delete and ids kept, each newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    pub delete: Vec<String>,
    pub keep: Vec<String>,
}

/// Plans retention over `backups` (complete backups of one source).
pub fn plan(backups: &[Manifest], policy: RetentionPolicy, now: DateTime<Utc>) -> RetentionPlan {
    let mut sorted: Vec<&Manifest> = backups.iter().collect();
    sorted.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(b.id.cmp(&a.id)));
    let mut out = RetentionPlan::default();
    for (i, m) in sorted.into_iter().enumerate() {
        let over_count = policy.keep_last.is_some_and(|k| i >= k.max(1));
        let too_old = policy.max_age.is_some_and(|age| now - m.started_at > age);
        if i > 0 && (over_count || too_old) {
            out.delete.push(m.id.clone());
        } else {
            out.keep.push(m.id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Digests, FORMAT, Sizes, Tool};

    fn backup(id: &str, hours_ago: i64, now: DateTime<Utc>) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            id: id.into(),
            source: "s".into(),
            started_at: now - Duration::hours(hours_ago),
            completed_at: now - Duration::hours(hours_ago),
            algorithm: crate::Algorithm::Aes256Gcm,
            key_id: "k".into(),
            compression: "gzip".into(),
            object: "o".into(),
            sizes: Sizes {
                source_bytes: 0,
                entries: 0,
                tar_bytes: 0,
                archive_bytes: 0,
                stored_bytes: 0,
            },
            sha256: Digests {
                archive: String::new(),
                stored: String::new(),
            },
            tool: Tool {
                name: "t".into(),
                version: "v".into(),
            },
            labels: Default::default(),
            snapshot: None,
        }
    }

    #[test]
    fn count_and_age_rules() {
        let now = Utc::now();
        let all: Vec<Manifest> = [("a", 1), ("b", 30), ("c", 5), ("d", 100)]
            .iter()
            .map(|(id, h)| backup(id, *h, now))
            .collect();
        let p = plan(
            &all,
            RetentionPolicy {
                keep_last: Some(2),
                max_age: None,
            },
            now,
        );
        assert_eq!(p.keep, vec!["a", "c"]);
        assert_eq!(p.delete, vec!["b", "d"]);
        let p = plan(
            &all,
            RetentionPolicy {
                keep_last: None,
                max_age: Some(Duration::hours(24)),
            },
            now,
        );
        assert_eq!(p.delete, vec!["b", "d"]);
        let p = plan(
            &all,
            RetentionPolicy {
                keep_last: Some(3),
                max_age: Some(Duration::hours(10)),
            },
            now,
        );
        assert_eq!(p.keep, vec!["a", "c"]);
        // The newest backup survives even when it is too old and keep_last is 0.
        let old = vec![backup("x", 500, now), backup("y", 600, now)];
        let p = plan(
            &old,
            RetentionPolicy {
                keep_last: Some(0),
                max_age: Some(Duration::hours(1)),
            },
            now,
        );
        assert_eq!(p.keep, vec!["x"]);
        assert_eq!(p.delete, vec!["y"]);
        assert_eq!(plan(&all, RetentionPolicy::default(), now).delete.len(), 0);
    }
}
