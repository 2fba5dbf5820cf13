//! The command line: `ticket-gateway [--config FILE] [--check-config] [--log-format …]`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use ticket_core::{MemoryStore, RedisConfig, RedisStore, Store, StoreError};

use crate::config::{ConfigError, Settings, StoreSettings, EXIT_CONFIG};
use crate::gateway::Gateway;
use crate::server::tls::Acceptors;
use crate::server::{run, Listeners};
use crate::telemetry::{self, LogFormat};

/// A gateway that speaks the Qlik Sense proxy (QPS) and QlikView web-ticket dialects.
#[derive(Debug, Parser)]
#[command(name = "ticket-gateway", version, about)]
pub struct Args {
    /// TOML configuration file; without it the embedded defaults serve on loopback.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Validate the configuration, print a summary and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Log line format.
    #[arg(long, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// A tool to run instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Tools besides serving.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read a password from standard input (its first line) and print its Argon2 hash, for
    /// a users file (`[demo] users_file`, `[qlikview] users_file`).
    HashPassword,
    /// Write a development root CA, a server certificate and a `QlikClient` client
    /// certificate, under the names a Qlik Sense site exports.
    Certs {
        /// Directory to write `root.pem`, `server.pem`, `server_key.pem`, `client.pem` and
        /// `client_key.pem` into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Host names and addresses the server certificate must cover, comma-separated.
        #[arg(long, value_name = "HOSTS", value_delimiter = ',', required = true)]
        hosts: Vec<String>,
    },
}

/// Reads and validates a configuration file; relative paths in it are relative to its
/// directory.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(name.clone(), format!("cannot read: {e}")))?;
    let base = path.parent().unwrap_or(Path::new("."));
    Settings::parse(&text, base).map_err(|e| {
        if e.key.is_empty() {
            ConfigError::new(name, e.message)
        } else {
            e
        }
    })
}

/// Runs the binary: parse arguments, load configuration, bind, serve until SIGINT/SIGTERM.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::HashPassword) = &args.command {
        let mut line = String::new();
        if std::io::stdin().read_line(&mut line).is_err() {
            eprintln!("ticket-gateway hash-password: cannot read standard input");
            return ExitCode::FAILURE;
        }
        let password = line.trim_end_matches(['\r', '\n']);
        if password.is_empty() {
            eprintln!("ticket-gateway hash-password: no password on standard input");
            return ExitCode::FAILURE;
        }
        println!("{}", crate::signin::passwords::hash(password));
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Certs { out, hosts }) = &args.command {
        let hosts: Vec<String> = hosts
            .iter()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
        return match crate::server::certs::generate(out, &hosts) {
            Ok(files) => {
                for f in files {
                    println!("wrote {f}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ticket-gateway certs: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let _log = telemetry::init(args.log_format);
    let settings = match &args.config {
        Some(path) => load(path),
        None => Ok(Settings::defaults()),
    };
    // Every file the settings name must be readable before anything is served.
    let settings = settings.and_then(|s| {
        Gateway::check(&s)?;
        Acceptors::load(&s)?;
        Ok(s)
    });
    let settings = match settings {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ticket-gateway: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    if args.check_config {
        println!(
            "configuration OK: frontend {} ({}), api {} ({}), {} virtual prox{}",
            settings.frontend.listen,
            settings.frontend.public_url,
            settings.api.listen,
            settings.api.public_url,
            settings.virtual_proxies.len(),
            if settings.virtual_proxies.len() == 1 {
                "y"
            } else {
                "ies"
            },
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ticket-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(settings))
}

/// The runtime: one event loop on the thread that runs `main` when the process may use one
/// CPU (as the benchmark pins it, as a container with one CPU runs it), a worker per CPU
/// otherwise. On one CPU a multi-thread runtime's single worker still pays for its
/// cross-thread queues, wake-ups and parking, for nothing another thread could take.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    if one_cpu {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let listeners = match Listeners::bind(&settings).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ticket-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    let prefixes: Vec<String> = settings
        .virtual_proxies
        .iter()
        .map(|vp| {
            if vp.prefix.is_empty() {
                "(default)".to_owned()
            } else {
                vp.prefix.clone()
            }
        })
        .collect();
    let store = match open_store(&settings.store).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ticket-gateway: cannot open the store: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = |l: &tokio::net::TcpListener, configured| l.local_addr().unwrap_or(configured);
    tracing::info!(
        frontend = %addr(&listeners.frontend, settings.frontend.listen),
        frontend_url = %settings.frontend.public_url,
        api = %addr(&listeners.api, settings.api.listen),
        api_url = %settings.api.public_url,
        store = store_name(&settings.store),
        store_url = %store_url(&settings.store),
        virtual_proxies = %prefixes.join(","),
        demo = settings.demo,
        "ticket-gateway listening"
    );
    let gateway = match Gateway::new(settings, store) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("ticket-gateway: configuration error: {e}");
            return ExitCode::from(EXIT_CONFIG as u8);
        }
    };
    reload_on_sighup(gateway.clone());
    run(listeners, gateway, shutdown_signal()).await;
    ExitCode::SUCCESS
}

fn store_name(store: &StoreSettings) -> &'static str {
    match store {
        StoreSettings::Memory => "memory",
        StoreSettings::Redis { .. } => "redis",
    }
}

fn store_url(store: &StoreSettings) -> String {
    match store {
        StoreSettings::Memory => String::new(),
        StoreSettings::Redis { url, .. } => redact(url),
    }
}

/// A Redis URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Opens the configured store; Redis is pinged first, so a wrong URL fails at start-up.
pub async fn open_store(store: &StoreSettings) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match store {
        StoreSettings::Memory => Arc::new(MemoryStore::new()),
        StoreSettings::Redis {
            url,
            key_prefix,
            timeout,
        } => {
            let mut cfg = RedisConfig::new(url.clone());
            cfg.key_prefix = key_prefix.clone();
            cfg.op_timeout = *timeout;
            Arc::new(RedisStore::connect(cfg).await?)
        }
    })
}

/// Re-reads the QlikView group directory on every SIGHUP; a bad file keeps the last good one.
fn reload_on_sighup(gateway: Gateway) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot install the SIGHUP handler; group reloads are off");
            return;
        };
        while hup.recv().await.is_some() {
            match gateway.reload_groups() {
                Ok(()) => tracing::info!("SIGHUP: group directory reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: group directory not reloaded; keeping the last good one")
                }
            }
        }
    });
    #[cfg(not(unix))]
    let _ = gateway;
}

/// Resolves on SIGINT or SIGTERM, and says which.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::warn!("cannot install signal handlers; stop with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received");
    }
}
