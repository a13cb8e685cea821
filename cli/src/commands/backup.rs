//! `midplane backup create|list|verify|restore`, in exactly the forms scripts
//! depend on. Progress (bytes, rate, time left) goes to stderr on a terminal only;
//! `create` prints the backup id as its last line of stdout.

use clap::Subcommand;
use midplane_backup::Algorithm;
use midplane_backup::cli::Progress;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// Back a directory up: tar.gz + SHA-256 + encryption, streamed to storage.
    Create {
        #[arg(long)]
        source: PathBuf,
        /// file:///path, s3://bucket/prefix?region=…&endpoint=…, minio://…, gcs://…, azure://…
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "aes256-gcm")]
        encryption: String,
        /// The 32-byte key.
        #[arg(long = "key-file")]
        key_file: PathBuf,
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
    /// anything is put in place.
    Restore {
        #[arg(long)]
        from: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        target: PathBuf,
        #[arg(long = "key-file")]
        key_file: PathBuf,
        /// Replace what a non-empty target holds (only once the backup has been verified).
        #[arg(long)]
        force: bool,
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
        } => {
            let alg: Algorithm = encryption
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
        } => {
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
