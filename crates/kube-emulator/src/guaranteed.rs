//! Writes that work outside the store's lock, as the apiserver's `GuaranteedUpdate` does
//! against etcd: read the current version, build the new object from it without holding
//! anything, and commit only if the stored version is still the one that was read;
//! otherwise read again and rebuild. Creates likewise prepare the object unlocked and only
//! take the lock to check the name is free and commit.
//!
//! Every write used to run start to end under the one lock. At 9,000 Pods the lock was
//! held three quarters of the time, mostly for work (patches, field management, copies of
//! whole objects) that needs no store, and requests queued behind it.

use std::sync::Arc;

use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::fields::Scope;
use crate::ops::{PatchKind, WriteOpts, now};
use crate::prepare::{
    applied_new, named, patched, prepare_create, prepare_update, put_body, put_precondition,
};
use crate::registry::ResourceType;
use crate::store::Store;

impl Store {
    /// Update `ns/name` with what `build` makes of its current version (`None`: nothing to
    /// write), retrying on a concurrent change. `Ok(None)` when the object does not exist.
    #[allow(clippy::too_many_arguments)]
    pub fn guaranteed_update(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        scope: Scope,
        o: &WriteOpts,
        track: bool,
        mut build: impl FnMut(&Value) -> ApiResult<Option<Value>>,
    ) -> ApiResult<Option<Arc<Value>>> {
        let gr = rt.gr();
        loop {
            let (old, alloc) = {
                let inner = self.lock();
                (inner.get(&gr, ns, name), inner.next_alloc())
            };
            let Some(old) = old else {
                return Ok(None);
            };
            let Some(new) = build(&old)? else {
                return Ok(Some(old));
            };
            let prepared = prepare_update(rt, &old, new, scope, o, track, alloc)?;
            let mut inner = self.lock();
            match inner.get(&gr, ns, name) {
                Some(cur) if Arc::ptr_eq(&cur, &old) => {
                    return inner.commit_update(rt, old, prepared, scope, o).map(Some);
                }
                // Changed (or gone) since it was read: start again from what is there now.
                _ => continue,
            }
        }
    }

    /// POST, with the object prepared outside the lock.
    pub fn create(
        &self,
        rt: &ResourceType,
        ns: &str,
        obj: Value,
        o: &WriteOpts,
        track: bool,
    ) -> ApiResult<Arc<Value>> {
        let obj = named(rt, ns, obj, o)?;
        let alloc = {
            let inner = self.lock();
            // Fail fast (and with the apiserver's precedence) before the costly steps.
            inner.may_create(rt, ns, &obj)?;
            inner.next_alloc()
        };
        let obj = prepare_create(rt, obj, o, track, alloc)?;
        self.lock().commit_create(rt, ns, obj, o)
    }

    /// PUT on the resource or its /status.
    pub fn update(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        obj: Value,
        scope: Scope,
        o: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        let obj = put_body(rt, ns, name, obj, o)?;
        self.guaranteed_update(rt, ns, name, scope, o, true, |old| {
            put_precondition(rt, name, &obj, old)?;
            Ok(Some(obj.clone()))
        })?
        .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// PATCH in any of the four formats; an apply to a missing object creates it.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        kind: PatchKind,
        body: &Value,
        scope: Scope,
        o: &WriteOpts,
    ) -> ApiResult<Arc<Value>> {
        let now = now();
        let track = kind != PatchKind::Apply;
        loop {
            let updated = self.guaranteed_update(rt, ns, name, scope, o, track, |old| {
                patched(rt, old, name, kind, body, scope, o, &now).map(Some)
            })?;
            if let Some(obj) = updated {
                return Ok(obj);
            }
            // Missing: only server-side apply creates.
            if kind != PatchKind::Apply || scope == Scope::Status {
                return Err(ApiError::not_found(&rt.group, &rt.plural, name));
            }
            let created = applied_new(rt, name, body, o, &now)?;
            match self.create(rt, ns, created, o, false) {
                // Created meanwhile by someone else: apply to what is there now.
                Err(e)
                    if e.reason == "AlreadyExists"
                        && self.lock().get(&rt.gr(), ns, name).is_some() =>
                {
                    continue;
                }
                done => return done,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::{gr, opts, rt_of};
    use crate::registry::Registry;
    use serde_json::json;

    fn store_with_config_map() -> (Store, Arc<ResourceType>) {
        let store = Store::new(Registry::with_builtins(), 100);
        let rt = rt_of(&store.lock(), &gr("", "configmaps")).expect("built in");
        let ns_rt = rt_of(&store.lock(), &gr("", "namespaces")).expect("built in");
        let o = opts("test");
        store
            .create(&ns_rt, "", json!({"metadata": {"name": "ns"}}), &o, true)
            .expect("namespace");
        store
            .create(
                &rt,
                "ns",
                json!({"metadata": {"name": "cm"}, "data": {"a": "1"}}),
                &o,
                true,
            )
            .expect("config map");
        (store, rt)
    }

    /// A PATCH of ConfigMap `ns/name` by manager "m".
    fn patch(
        store: &Store,
        rt: &ResourceType,
        name: &str,
        kind: PatchKind,
        body: &Value,
    ) -> ApiResult<Arc<Value>> {
        store.patch(rt, "ns", name, kind, body, Scope::All, &opts("m"))
    }

    #[test]
    fn an_update_raced_by_another_writer_is_rebuilt_from_the_newer_version() {
        let (store, rt) = store_with_config_map();
        let mut attempts = 0;
        let out = store
            .guaranteed_update(&rt, "ns", "cm", Scope::All, &opts("one"), true, |old| {
                attempts += 1;
                if attempts == 1 {
                    // Another writer commits while this one is building, unlocked.
                    store
                        .patch(
                            &rt,
                            "ns",
                            "cm",
                            PatchKind::Merge,
                            &json!({"data": {"b": "2"}}),
                            Scope::All,
                            &opts("two"),
                        )
                        .expect("the racing write");
                }
                let mut new = old.clone();
                new["data"]["c"] = json!("3");
                Ok(Some(new))
            })
            .expect("update")
            .expect("the object exists");
        assert_eq!(attempts, 2, "the first build was thrown away");
        assert_eq!(
            out["data"],
            json!({"a": "1", "b": "2", "c": "3"}),
            "nothing lost"
        );
        let managers: Vec<&str> = out["metadata"]["managedFields"]
            .as_array()
            .expect("managed fields")
            .iter()
            .filter_map(|e| e["manager"].as_str())
            .collect();
        assert!(
            managers.contains(&"one") && managers.contains(&"two"),
            "{managers:?}"
        );
        assert_eq!(
            out["metadata"]["resourceVersion"],
            store.lock().rv.to_string()
        );
    }

    #[test]
    fn nothing_to_write_or_nothing_there_commits_nothing() {
        let (store, rt) = store_with_config_map();
        let rv = store.lock().rv;
        let same = store
            .guaranteed_update(&rt, "ns", "cm", Scope::All, &opts("x"), true, |_| Ok(None))
            .expect("update");
        assert!(same.is_some());
        let gone = store
            .guaranteed_update(&rt, "ns", "nope", Scope::All, &opts("x"), true, |_| {
                panic!("not called for a missing object")
            })
            .expect("update");
        assert!(gone.is_none());
        assert_eq!(store.lock().rv, rv, "no resourceVersion spent");
    }

    #[test]
    fn a_create_whose_name_was_taken_meanwhile_is_409() {
        let (store, rt) = store_with_config_map();
        let err = store
            .create(
                &rt,
                "ns",
                json!({"metadata": {"name": "cm"}}),
                &opts("x"),
                true,
            )
            .expect_err("the name is taken");
        assert_eq!(err.status()["code"], 409, "{:?}", err.status());
    }

    #[test]
    fn a_patch_of_a_missing_object_is_404_unless_it_is_an_apply() {
        let (store, rt) = store_with_config_map();
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": "new"}, "data": {"k": "v"}});
        let err =
            patch(&store, &rt, "new", PatchKind::Merge, &body).expect_err("merge patch of nothing");
        assert_eq!(err.code, 404);
        let created = patch(&store, &rt, "new", PatchKind::Apply, &body).expect("apply creates");
        assert_eq!(created["data"]["k"], "v");
        assert_eq!(
            created["metadata"]["managedFields"][0]["operation"],
            "Apply"
        );
        let changed = json!({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "new"}, "data": {"k": "w"}});
        let updated = patch(&store, &rt, "new", PatchKind::Apply, &changed).expect("apply updates");
        assert_eq!(updated["data"]["k"], "w");
        assert_eq!(
            updated["metadata"]["uid"], created["metadata"]["uid"],
            "the same object"
        );
    }
}
