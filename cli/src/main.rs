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
    /// Print the CustomResourceDefinitions (App, Component, Group).
    Crds,
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
