//! `midplane backup create|list|verify|restore`, in exactly the forms scripts
//! depend on. Progress (bytes, rate, time left) goes to stderr on a terminal only;
//! `create` prints the backup id as its last line of stdout.

use clap::Subcommand;
use midplane_backup::Algorithm;
use midplane_backup::cli::Progress;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Back a directory up: tar.gz + SHA-256 + encryption, streamed to storage
    /// (--source, --to, --key-file). Or, with --app and --component, back a running
    /// component up on a cluster by creating a Backup resource and following it.
    Create {
        #[arg(long, required_unless_present = "app", conflicts_with = "app")]
        source: Option<PathBuf>,
        /// file:///path, s3://bucket/prefix?region=…&endpoint=…, minio://…, gcs://…, azure://…
        #[arg(long, required_unless_present = "app")]
        to: Option<String>,
        /// aes256-gcm (default), aes256-cbc or gpg.
        #[arg(long)]
        encryption: Option<String>,
        /// The 32-byte key.
        #[arg(long = "key-file", required_unless_present = "app")]
        key_file: Option<PathBuf>,
        /// Cluster mode: the App whose component to back up.
        #[arg(long, requires = "component")]
        app: Option<String>,
        #[arg(long, requires = "app")]
        component: Option<String>,
        /// Cluster mode: the Group (shard); default: the component's only Group.
        #[arg(long, requires = "app", default_value = "")]
        group: String,
        /// Cluster mode: the instance to snapshot; default: a healthy replica, else the primary.
        #[arg(long, requires = "app", default_value = "")]
        instance: String,
        /// Cluster mode: a storage name configured in backup-svc or a URI; default: the
        /// component's backup policy.
        #[arg(long, requires = "app", default_value = "")]
        storage: String,
        /// Cluster mode: the Secret holding the key; default: the component's backup policy.
        #[arg(long = "key-secret", requires = "app")]
        key_secret: Option<String>,
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Cluster mode: return once the Backup is created instead of following it.
        #[arg(long = "no-wait")]
        no_wait: bool,
        /// Cluster mode: how long to follow it.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
        #[arg(long, env = "MIDPLANE_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
    },
    /// List complete backups (and flag incomplete ones).
    List {
        #[arg(long)]
        from: String,
    },
    /// Download, authenticate and hash-check a backup without restoring it.
    Verify {
        #[arg(long)]
        from: String,
        #[arg(long)]
        id: String,
        #[arg(long = "key-file")]
        key_file: PathBuf,
    },
    /// Restore into DIR, which must be missing or empty unless --force; verified before
    /// anything is put in place. Or, with --app, --component and --backup, restore a
    /// running component's Group in place on a cluster by creating a Restore resource and
    /// following it (docs/backups.md).
    Restore {
        #[arg(long, required_unless_present = "app")]
        from: Option<String>,
        #[arg(long, required_unless_present = "app")]
        id: Option<String>,
        #[arg(long, required_unless_present = "app", conflicts_with = "app")]
        target: Option<PathBuf>,
        #[arg(long = "key-file", required_unless_present = "app")]
        key_file: Option<PathBuf>,
        /// Cluster mode: the App whose component to restore.
        #[arg(long, requires_all = ["component", "backup"])]
        app: Option<String>,
        #[arg(long, requires = "app")]
        component: Option<String>,
        /// Cluster mode: the Group (shard); default: the component's only Group.
        #[arg(long, requires = "app", default_value = "")]
        group: String,
        /// Cluster mode: the Completed Backup to restore.
        #[arg(long, requires = "app")]
        backup: Option<String>,
        #[arg(short = 'n', long, default_value = "default")]
        namespace: String,
        /// Cluster mode: return once the Restore is created instead of following it.
        #[arg(long = "no-wait")]
        no_wait: bool,
        /// Cluster mode: how long to follow it.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
        #[arg(long, env = "MIDPLANE_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// Replace what a non-empty target holds (only once the backup has been verified).
        #[arg(long, conflicts_with = "if_empty")]
        force: bool,
        /// Restore only into a missing or empty target; one that holds data is left as it
        /// is and the command succeeds saying so (how a Pod's restore init container runs on
        /// every start, filling its volume once).
        #[arg(long = "if-empty")]
        if_empty: bool,
    },
}

pub async fn run(cmd: BackupCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout();
    match cmd {
        BackupCommand::Create {
            source,
            to,
            encryption,
            key_file,
            app,
            component,
            group,
            instance,
            storage,
            key_secret,
            namespace,
            no_wait,
            timeout_secs,
            kubeconfig,
        } => {
            if let (Some(app), Some(component)) = (app, component) {
                let req = super::backups::CreateRequest {
                    namespace,
                    app,
                    component,
                    group,
                    instance,
                    storage,
                    encryption,
                    key_secret,
                    wait: (!no_wait).then(|| std::time::Duration::from_secs(timeout_secs)),
                };
                return super::backups::create(req, kubeconfig.as_deref()).await;
            }
            let (Some(source), Some(to), Some(key_file)) = (source, to, key_file) else {
                anyhow::bail!(
                    "backup create needs --source, --to and --key-file (or --app and --component)"
                );
            };
            let alg: Algorithm = encryption
                .as_deref()
                .unwrap_or("aes256-gcm")
                .parse()
                .map_err(|e| anyhow::anyhow!("--encryption: {e}"))?;
            midplane_backup::cli::backup(&source, &to, alg, &key_file, Progress::Auto, &mut out)
                .await?;
        }
        BackupCommand::List { from } => {
            midplane_backup::cli::list(&from, &mut out).await?;
        }
        BackupCommand::Verify { from, id, key_file } => {
            midplane_backup::cli::verify(&from, &id, &key_file, Progress::Auto, &mut out).await?;
        }
        BackupCommand::Restore {
            from,
            id,
            target,
            key_file,
            force,
            if_empty,
            app,
            component,
            group,
            backup,
            namespace,
            no_wait,
            timeout_secs,
            kubeconfig,
        } => {
            if let (Some(app), Some(component), Some(backup)) = (app, component, backup) {
                let req = super::backups::RestoreRequest {
                    namespace,
                    app,
                    component,
                    group,
                    backup,
                    wait: (!no_wait).then(|| std::time::Duration::from_secs(timeout_secs)),
                };
                return super::backups::restore(req, kubeconfig.as_deref()).await;
            }
            let (Some(from), Some(id), Some(target), Some(key_file)) = (from, id, target, key_file)
            else {
                anyhow::bail!(
                    "backup restore needs --from, --id, --target and --key-file (or --app, --component and --backup)"
                );
            };
            if if_empty {
                match midplane_backup::check_restore_target(&target) {
                    Ok(()) => {}
                    Err(midplane_backup::TargetProblem::NotEmpty { count, example }) => {
                        println!(
                            "restore target {} already holds data ({count} {}, among them {example:?}): nothing restored",
                            target.display(),
                            if count == 1 { "entry" } else { "entries" }
                        );
                        return Ok(());
                    }
                    Err(e) => anyhow::bail!("restore target {}: {e}", target.display()),
                }
            }
            midplane_backup::cli::restore(
                &from,
                &id,
                &target,
                &key_file,
                force,
                Progress::Auto,
                &mut out,
            )
            .await?;
        }
    }
    Ok(())
}
