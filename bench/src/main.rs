//! `logai-bench`: benchmarks that need code the production `logai` binary
//! does not ship. Driven by `scripts/bench` (the one entry point).
//!
//! `logai-bench call`: the added cost of a WebAssembly tool. The same MCP
//! server path (in-process, over an in-memory pipe) runs `tools/call hello`
//! against the `hello` plugin component and against the same tool compiled
//! natively ([`native::HelloNative`]); the difference of the medians is
//! what the sandbox costs per call.

mod native;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use clap::{Parser, Subcommand};
use logai::call::ToolHost;
use logai::config::Config;
use logai::plugins::{NoHostServices, Runtime};

use native::HelloNative;

#[derive(Parser)]
#[command(name = "logai-bench", version, about = "logai benchmarks that need code the production binary does not ship")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// tools/call through the WASM `hello` plugin vs the same tool native, in process.
    Call(BenchCallArgs),
}

#[derive(clap::Args, Debug)]
struct BenchCallArgs {
    /// The manifest (its plugins must offer `hello`).
    #[arg(long, short = 'c')]
    config: Option<std::path::PathBuf>,
    /// Calls per variant (after 200 warm-up calls).
    #[arg(long, default_value_t = 5000)]
    iterations: usize,
    /// Run only the WebAssembly variant (for profiling it alone).
    #[arg(long)]
    wasm_only: bool,
}

async fn round_trips(host: Arc<dyn ToolHost>, n: usize) -> anyhow::Result<Vec<Duration>> {
    // Two one-way pipes (a split duplex shares one lock between its halves).
    let (mut client_w, server_r) = tokio::io::duplex(1 << 20);
    let (server_w, client_r) = tokio::io::duplex(1 << 20);
    let opts = logai::mcp::ServerOptions::default();
    let task = tokio::spawn(logai::mcp::serve(BufReader::new(server_r), server_w, host, opts));
    let mut lines = BufReader::new(client_r).lines();
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}});
    client_w.write_all(format!("{init}\n{}\n", json!({"jsonrpc":"2.0","method":"notifications/initialized"})).as_bytes()).await?;
    let init_resp = lines.next_line().await?;
    tracing::debug!(?init_resp, "bench: initialized");
    let mut out = Vec::with_capacity(n);
    for i in 0..n + 200 {
        let req = json!({"jsonrpc":"2.0","id": i + 1,"method":"tools/call","params":{"name":"hello","arguments":{"name":"bench"}}});
        let line = format!("{req}\n");
        let t = Instant::now();
        client_w.write_all(line.as_bytes()).await?;
        let resp = lines.next_line().await?.ok_or_else(|| anyhow::anyhow!("server closed"))?;
        let elapsed = t.elapsed();
        let v: Value = serde_json::from_str(&resp)?;
        anyhow::ensure!(v["result"]["isError"] == json!(false), "hello failed: {resp}");
        if i >= 200 {
            out.push(elapsed);
        }
    }
    drop(client_w);
    let _ = task.await;
    Ok(out)
}

fn pct(sorted: &[Duration], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

fn main() -> ExitCode {
    let Command::Call(args) = Cli::parse().command;
    let config = match logai::config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("logai-bench: invalid manifest: {e}");
            return ExitCode::from(2);
        }
    };
    match bench_call(&config, &args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logai-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn bench_call(config: &Config, args: &BenchCallArgs) -> anyhow::Result<ExitCode> {
    let _log = logai::serve::init_logging(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let wasm = Runtime::load(config, Arc::new(NoHostServices)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(wasm.tools().iter().any(|t| t.name == "hello"), "the manifest has no plugin offering `hello`");
        let mut plugin = round_trips(Arc::new(wasm), args.iterations).await?;
        if args.wasm_only {
            plugin.sort();
            println!("wasm p50 {:.1} µs p90 {:.1} µs p99 {:.1} µs", pct(&plugin, 0.5), pct(&plugin, 0.9), pct(&plugin, 0.99));
            return Ok(ExitCode::SUCCESS);
        }
        let mut native = round_trips(Arc::new(HelloNative), args.iterations).await?;
        native.sort();
        plugin.sort();
        println!("{:<8}{:>8}{:>12}{:>12}{:>12}", "variant", "calls", "p50 µs", "p90 µs", "p99 µs");
        for (name, xs) in [("native", &native), ("wasm", &plugin)] {
            println!("{:<8}{:>8}{:>12.1}{:>12.1}{:>12.1}", name, xs.len(), pct(xs, 0.5), pct(xs, 0.9), pct(xs, 0.99));
        }
        let added = pct(&plugin, 0.5) - pct(&native, 0.5);
        println!("WASM adds {added:.1} µs at the median ({:.2}x native; target: under 50 µs)", pct(&plugin, 0.5) / pct(&native, 0.5));
        Ok(ExitCode::SUCCESS)
    })
}
