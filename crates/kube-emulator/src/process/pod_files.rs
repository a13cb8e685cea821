//! A Pod's own files and identity: /etc/hosts, /etc/resolv.conf and /etc/hostname as the
//! kubelet writes them, its host name, and the user and groups its containers run as.

use serde_json::Value;

use super::pod::Worker;

/// The Pod's host name: `spec.hostname`, else its name (at most 63 characters).
pub fn hostname(pod: &Value) -> String {
    let h = pod["spec"]["hostname"]
        .as_str()
        .filter(|h| !h.is_empty())
        .or_else(|| pod["metadata"]["name"].as_str())
        .unwrap_or("pod");
    h.chars().take(63).collect()
}

/// The user, group and supplementary groups a container runs as.
pub(super) type Creds = (Option<u32>, Option<u32>, Vec<u32>);

pub(super) fn creds(pod: &Value, c: &Value) -> Result<Creds, String> {
    let psc = &pod["spec"]["securityContext"];
    let csc = &c["securityContext"];
    let num = |k: &str| {
        csc[k]
            .as_u64()
            .or_else(|| psc[k].as_u64())
            .map(|v| v as u32)
    };
    let uid = num("runAsUser");
    let non_root = csc["runAsNonRoot"]
        .as_bool()
        .or_else(|| psc["runAsNonRoot"].as_bool())
        == Some(true);
    if non_root && uid.is_none_or(|u| u == 0) {
        return Err(format!(
            "container has runAsNonRoot and image will run as root (pod: \"{}_{}\", container: {})",
            pod["metadata"]["name"].as_str().unwrap_or_default(),
            pod["metadata"]["namespace"].as_str().unwrap_or_default(),
            c["name"].as_str().unwrap_or_default()
        ));
    }
    let gid = num("runAsGroup").or(uid.map(|_| 0));
    let mut groups: Vec<u32> = Vec::new();
    groups.extend(gid);
    groups.extend(psc["fsGroup"].as_u64().map(|g| g as u32));
    for g in psc["supplementalGroups"].as_array().into_iter().flatten() {
        groups.extend(g.as_u64().map(|g| g as u32));
    }
    groups.dedup();
    Ok((uid, gid, groups))
}

impl Worker {
    /// /etc/hosts, /etc/resolv.conf and /etc/hostname of the Pod, as the kubelet writes them.
    pub(super) fn write_pod_files(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let pod = &self.pod;
        let host = hostname(pod);
        let mut hosts = String::from(
            "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n",
        );
        match pod["spec"]["subdomain"].as_str().filter(|s| !s.is_empty()) {
            Some(sub) => hosts.push_str(&format!(
                "{}\t{host}.{sub}.{}.svc.cluster.local\t{host}\n",
                self.ip, self.ns
            )),
            None => hosts.push_str(&format!("{}\t{host}\n", self.ip)),
        }
        let aliases = pod["spec"]["hostAliases"].as_array();
        if aliases.is_some_and(|a| !a.is_empty()) {
            hosts.push_str("\n# Entries added by HostAliases.\n");
        }
        for a in aliases.into_iter().flatten() {
            let names: Vec<&str> = a["hostnames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            hosts.push_str(&format!(
                "{}\t{}\n",
                a["ip"].as_str().unwrap_or_default(),
                names.join("\t")
            ));
        }
        std::fs::write(self.dir.join("etc-hosts"), hosts)?;
        let cfg = &pod["spec"]["dnsConfig"];
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        };
        let policy = pod["spec"]["dnsPolicy"].as_str().unwrap_or("ClusterFirst");
        let (mut search, mut servers, mut options) = if policy == "None" {
            (Vec::new(), Vec::new(), Vec::new())
        } else {
            (
                vec![
                    format!("{}.svc.cluster.local", self.ns),
                    "svc.cluster.local".into(),
                    "cluster.local".into(),
                ],
                vec![self.rt.dns_addr.ip().to_string()],
                vec!["ndots:5".to_string()],
            )
        };
        search.extend(strings(&cfg["searches"]));
        servers.extend(strings(&cfg["nameservers"]));
        for o in cfg["options"].as_array().into_iter().flatten() {
            let name = o["name"].as_str().unwrap_or_default();
            options.retain(|x| x.split(':').next() != Some(name));
            options.push(match o["value"].as_str() {
                Some(v) => format!("{name}:{v}"),
                None => name.to_string(),
            });
        }
        let mut resolv = String::new();
        if !search.is_empty() {
            resolv.push_str(&format!("search {}\n", search.join(" ")));
        }
        for s in servers {
            resolv.push_str(&format!("nameserver {s}\n"));
        }
        if !options.is_empty() {
            resolv.push_str(&format!("options {}\n", options.join(" ")));
        }
        std::fs::write(self.dir.join("resolv.conf"), resolv)?;
        std::fs::write(self.dir.join("hostname"), format!("{host}\n"))
    }
}
