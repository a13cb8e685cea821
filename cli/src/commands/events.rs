//! `midplane events tail|dlq`: an operator's window onto the bus.

use clap::{Args, Parser, Subcommand, ValueEnum};
use midplane_bus::BusConfig;
use midplane_bus::cli::{Format, TailOptions};
use midplane_bus::dlq::ReplayOptions;

#[derive(Parser)]
pub struct EventsArgs {
    /// The topic exchange events go through (default: midplane.events).
    #[arg(long, global = true)]
    exchange: Option<String>,
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Print live events from a temporary queue until Ctrl-C.
    Tail {
        /// Topic pattern over event types: midplane.plugin.*, midplane.group.#, #.
        #[arg(long = "type", default_value = "#")]
        pattern: String,
        #[arg(long, value_enum, default_value = "text")]
        output: Output,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Inspect and replay a subscriber's dead-letter queue.
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// List dead-lettered events (they stay in the queue).
    List(DlqArgs),
    /// Send dead-lettered events back to their subscriber.
    Replay {
        #[command(flatten)]
        dlq: DlqArgs,
        /// Only these event ids (repeatable); default: all.
        #[arg(long = "id")]
        ids: Vec<String>,
    },
}

#[derive(Args)]
pub struct DlqArgs {
    subscriber: String,
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

impl From<Output> for Format {
    fn from(o: Output) -> Self {
        match o {
            Output::Text => Format::Text,
            Output::Json => Format::Json,
        }
    }
}

/// The broker comes from `MIDPLANE_AMQP_URL` (default: the local RabbitMQ).
pub async fn run(args: EventsArgs) -> anyhow::Result<()> {
    let mut bus = BusConfig::from_env()?.with_source("/midplane/cli");
    if let Some(exchange) = args.exchange {
        bus = bus.with_exchange(exchange);
    }
    let cmd = args.command;
    let mut out = tokio::io::stdout();
    match cmd {
        EventsCommand::Tail {
            pattern,
            output,
            count,
        } => {
            let opts = TailOptions {
                pattern,
                format: output.into(),
                count,
            };
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            midplane_bus::cli::events_tail(&bus, &opts, &mut out, stop).await?;
        }
        EventsCommand::Dlq {
            command: DlqCommand::List(a),
        } => {
            midplane_bus::cli::events_dlq_list(
                &bus,
                &a.subscriber,
                a.limit.unwrap_or(100),
                a.output.into(),
                &mut out,
            )
            .await?;
        }
        EventsCommand::Dlq {
            command: DlqCommand::Replay { dlq, ids },
        } => {
            let opts = ReplayOptions {
                ids,
                limit: dlq.limit,
            };
            midplane_bus::cli::events_dlq_replay(
                &bus,
                &dlq.subscriber,
                &opts,
                dlq.output.into(),
                &mut out,
            )
            .await?;
        }
    }
    Ok(())
}
