//! `quartier-server`: one binary, subcommands `serve` and `admin`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use quartier_server::config::{Config, FileConfig};

#[derive(Parser)]
#[command(name = "quartier-server", version, about = "Quartier sync server")]
struct Cli {
    /// TOML configuration file (flags and environment variables override it).
    #[arg(long, global = true, env = "QUARTIER_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve sync, devices and membership (embedded SQLite in the data folder).
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:8470 (port 0 picks a free port).
        #[arg(long, env = "QUARTIER_LISTEN")]
        listen: Option<std::net::SocketAddr>,
        /// Folder for the database.
        #[arg(long, env = "QUARTIER_DATA")]
        data: Option<PathBuf>,
        /// Largest blob (media file) accepted, in bytes.
        #[arg(long, env = "QUARTIER_MAX_BLOB_BYTES")]
        max_blob_bytes: Option<u64>,
        /// Blob bytes one space may hold.
        #[arg(long, env = "QUARTIER_SPACE_QUOTA_BYTES")]
        space_quota_bytes: Option<u64>,
        /// Seconds between garbage collections of blobs (0: never; default one hour).
        #[arg(long, env = "QUARTIER_BLOB_GC_INTERVAL_SECS")]
        blob_gc_interval_secs: Option<u64>,
        /// Seconds a blob stays unreferenced, or an upload untouched, before it is collected
        /// (default 7 days).
        #[arg(long, env = "QUARTIER_BLOB_GC_GRACE_SECS")]
        blob_gc_grace_secs: Option<u64>,
    },
    /// Administrative tasks on the data folder.
    Admin {
        #[arg(long, env = "QUARTIER_DATA")]
        data: Option<PathBuf>,
        #[command(subcommand)]
        task: AdminTask,
    },
}

#[derive(Subcommand)]
enum AdminTask {
    /// Prints counts of persons, devices, spaces, members and logged changes.
    Stats,
    /// Collects blobs no item references and uploads abandoned for the grace period, now (the
    /// same collection `serve` runs periodically). Best run while the server is stopped.
    Gc {
        /// Seconds a blob stays unreferenced, or an upload untouched, before it is collected
        /// (default: the configured `blob_gc_grace_secs`, 7 days).
        #[arg(long)]
        grace_secs: Option<u64>,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QUARTIER_LOG").unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quartier-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), quartier_server::ServerError> {
    let mut config = Config::default();
    if let Some(path) = &cli.config {
        config = FileConfig::read(path)?.apply(config);
    }
    match cli.command {
        Command::Serve {
            listen,
            data,
            max_blob_bytes,
            space_quota_bytes,
            blob_gc_interval_secs,
            blob_gc_grace_secs,
        } => {
            if let Some(v) = blob_gc_interval_secs {
                config.blob_gc_interval_secs = v;
            }
            if let Some(v) = blob_gc_grace_secs {
                config.blob_gc_grace_secs = v;
            }
            if let Some(v) = max_blob_bytes {
                config.max_blob_bytes = v;
            }
            if let Some(v) = space_quota_bytes {
                config.space_quota_bytes = v;
            }
            if let Some(listen) = listen {
                config.listen = listen;
            }
            if let Some(data) = data {
                config.data_dir = data;
            }
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| quartier_server::ServerError::Startup(e.to_string()))?;
            runtime.block_on(quartier_server::serve(config, shutdown_signal()))
        }
        Command::Admin {
            data,
            task: AdminTask::Gc { grace_secs },
        } => {
            if let Some(data) = data {
                config.data_dir = data;
            }
            let grace = grace_secs.unwrap_or(config.blob_gc_grace_secs);
            let report = quartier_server::blobs::gc::collect_in(&config, grace)?;
            println!("abandoned_uploads: {}", report.abandoned_uploads);
            println!("released_claims: {}", report.released_claims);
            println!("deleted_blobs: {}", report.deleted_blobs);
            println!("freed_bytes: {}", report.freed_bytes);
            Ok(())
        }
        Command::Admin {
            data,
            task: AdminTask::Stats,
        } => {
            if let Some(data) = data {
                config.data_dir = data;
            }
            let db = quartier_server::storage::Db::open(&config.data_dir)?;
            let conn = db.lock();
            for table in ["persons", "devices", "spaces", "members", "docs", "log"] {
                let n: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
                println!("{table}: {n}");
            }
            Ok(())
        }
    }
}

/// Ctrl-C or SIGTERM: stop accepting, finish in-flight requests, exit.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down");
}
