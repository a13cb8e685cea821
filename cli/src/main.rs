//! `midplane`: the command line. This file only parses arguments and
//! dispatches; each command lives in `commands/`.

mod commands;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "midplane",
    version,
    about = "Run stateful middleware on Kubernetes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every Kubernetes object the platform would create for an App.
    Render {
        /// The App manifest (YAML); `-` reads standard input.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        /// A directory of plugin directories; default: the bundled plugins.
        #[arg(long)]
        plugins: Option<PathBuf>,
        /// The App as it runs now, to refuse changes of immutable parameters.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Work with plugin directories.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Encrypted backups to object storage, and restores.
    Backup {
        #[command(subcommand)]
        command: Box<commands::backup::BackupCommand>,
    },
    /// The event bus: tail live events, inspect and replay dead letters.
    Events(commands::events::EventsArgs),
    /// Render a Helm chart directory the way `helm template` does.
    Template(commands::template::TemplateArgs),
    /// Print the CustomResourceDefinitions (App, Component, Group).
    Crds,
    /// Run the platform locally: API emulator, CRDs, plugins and controllers.
    Dev {
        /// Where the kubeconfig is written.
        #[arg(long, default_value = ".midplane")]
        state: PathBuf,
        /// Emulator port; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// How long emulated Pods take to turn Ready.
        #[arg(long, default_value_t = 500)]
        pod_ready_delay_ms: u64,
        /// How Pods run: real local processes or simulated (auto: processes when possible).
        #[arg(long, value_enum, default_value = "auto")]
        pods: commands::dev::Pods,
        /// Publish the platform's events on this RabbitMQ (AMQP URL).
        #[arg(long, env = "MIDPLANE_BUS__URL")]
        bus: Option<String>,
        /// Process Pods: which local programs stand in for which images
        /// (replaces the built-in map, crates/kube-emulator/images.yaml).
        #[arg(long)]
        image_map: Option<PathBuf>,
    },
    /// Create or update an App, a Backup or a Restore (server-side apply, by `kind`).
    Apply {
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        #[arg(long, env = "MIDPLANE_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
    },
    /// List apps, components, groups, backups or restores.
    Get {
        kind: String,
        #[arg(short = 'n', long)]
        namespace: Option<String>,
        #[arg(short = 'A', long = "all-namespaces")]
        all_namespaces: bool,
        #[arg(long, env = "MIDPLANE_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
    },
    /// Delete the App a file names.
    Delete {
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        #[arg(long, env = "MIDPLANE_KUBECONFIG")]
        kubeconfig: Option<PathBuf>,
        /// Wait until the App and all its children are gone.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Check a plugin directory: metadata, values and every template.
    Lint { dir: PathBuf },
    /// Pack a plugin directory into its ConfigMap (YAML on standard output).
    Pack {
        dir: PathBuf,
        #[arg(long, default_value = "midplane-system")]
        namespace: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev {
            state,
            port,
            pod_ready_delay_ms,
            pods,
            bus,
            image_map,
        } => runtime().and_then(|rt| {
            init_logs();
            rt.block_on(commands::dev::run(commands::dev::DevOptions {
                state: &state,
                port,
                pod_ready_delay_ms,
                pods,
                bus,
                image_map,
            }))
        }),
        Command::Apply { file, kubeconfig } => runtime()
            .and_then(|rt| rt.block_on(commands::cluster::apply(&file, kubeconfig.as_deref()))),
        Command::Get {
            kind,
            namespace,
            all_namespaces,
            kubeconfig,
        } => {
            let ns = if all_namespaces {
                None
            } else {
                Some(namespace.unwrap_or_else(|| "default".into()))
            };
            runtime().and_then(|rt| {
                rt.block_on(commands::cluster::get(
                    &kind,
                    ns.as_deref(),
                    kubeconfig.as_deref(),
                ))
            })
        }
        Command::Delete {
            file,
            kubeconfig,
            wait,
        } => runtime().and_then(|rt| {
            rt.block_on(commands::cluster::delete(
                &file,
                kubeconfig.as_deref(),
                wait,
            ))
        }),
        Command::Render {
            file,
            plugins,
            previous,
        } => commands::render::run(&file, plugins.as_deref(), previous.as_deref()),
        Command::Plugin {
            command: PluginCommand::Lint { dir },
        } => commands::plugin::lint(&dir),
        Command::Plugin {
            command: PluginCommand::Pack { dir, namespace },
        } => commands::plugin::pack(&dir, &namespace),
        Command::Template(args) => commands::template::run(args),
        Command::Backup { command } => {
            runtime().and_then(|rt| rt.block_on(commands::backup::run(*command)))
        }
        Command::Events(args) => runtime().and_then(|rt| rt.block_on(commands::events::run(args))),
        Command::Crds => commands::crds(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
