//! The `logai` command line. Each subcommand loads the manifest and hands
//! off to its room; nothing here knows how the rooms work.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "logai", version, about = "Answers agents' questions about this machine's logs over MCP (stdio).")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct ConfigArg {
    /// The manifest. Default: $LOGAI_CONFIG, ./config/logai.toml, /etc/logai/logai.toml, else embedded defaults.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// The person this session acts for (rate limits, [access], logs, telemetry); set by the key's
    /// forced command in authorized_keys (docs/deploy.md). Default: the local account.
    #[arg(long = "as", value_name = "NAME")]
    as_person: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (what an agent runs: `ssh host logai serve`).
    Serve(ServeArgs),
    /// Compile every enabled component into the precompile cache.
    Precompile(ConfigArg),
    /// Inspect plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Validate the manifest.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Search a service's logs from the shell (the same core the tools use).
    Search(logai::search::SearchArgs),
    /// Mine one file's log patterns (templates with counts; `--assign`: each line's pattern id).
    Patterns(logai::patterns::cli::PatternsArgs),
    /// Check this host: manifest, plugins and exporters, services' files and stamps, directories,
    /// Redis, exporters' endpoints, the SSH forced command. Non-zero exit on any failure.
    Doctor {
        #[command(flatten)]
        config: ConfigArg,
        /// sshd's AuthorizedKeysFile, when not ~/.ssh/authorized_keys of the serving account.
        #[arg(long, value_name = "PATH")]
        authorized_keys: Option<PathBuf>,
        /// Findings as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Serve Prometheus metrics of all sessions (`/metrics`, `/healthz`).
    Metrics {
        #[command(flatten)]
        config: ConfigArg,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Every plugin and exporter with its grants (and, when loadable, its tools).
    List(ConfigArg),
    /// Create a plugin project (Rust, Python or JavaScript) with one typed tool, its test, the build command and the manifest lines.
    New(logai::scaffold::NewArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check the manifest (errors with file, line and column) and load every enabled plugin (every broken tool spec, with its plugin and tool); or print the effective configuration.
    Check {
        #[command(flatten)]
        config: ConfigArg,
        /// Print the effective configuration (after ${VAR} expansion and environment overrides).
        #[arg(long)]
        print: bool,
    },
}

fn load_config(arg: &ConfigArg) -> Result<logai::config::Config, ExitCode> {
    logai::config::load(arg.config.as_deref()).map_err(|e| {
        eprintln!("logai: invalid manifest: {e}");
        ExitCode::from(2)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logai: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let config = match load_config(&args.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            logai::serve::run_as(config, args.as_person.as_deref())
        }
        Command::Precompile(arg) => {
            let config = match load_config(&arg) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            logai::serve::precompile(&config)
        }
        Command::Plugins { command: PluginsCommand::List(arg) } => {
            let config = match load_config(&arg) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            logai::serve::list_plugins(&config)
        }
        Command::Plugins { command: PluginsCommand::New(args) } => logai::scaffold::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Search(args) => logai::serve::search_cli(args),
        Command::Doctor { config, authorized_keys, json } => logai::doctor::run(config.config.as_deref(), authorized_keys.as_deref(), json),
        Command::Patterns(args) => logai::patterns::cli::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Metrics { config, listen } => {
            let config = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            logai::serve::metrics_server(&config, listen)
        }
        Command::Config { command: ConfigCommand::Check { config, print } } => {
            let config = match load_config(&config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            if print {
                println!("# effective configuration (source: {})", config.source);
                println!("{}", toml::to_string_pretty(&config)?);
            } else {
                println!(
                    "{}: ok ({} services, {} plugins, {} exporters enabled)",
                    config.source,
                    config.service.len(),
                    config.plugin.iter().filter(|p| p.enabled).count(),
                    config.exporter.iter().filter(|x| x.enabled).count()
                );
                // Every plugin loaded as `serve` would, every problem reported.
                return logai::serve::check_plugins(&config);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
