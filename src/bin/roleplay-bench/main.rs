//! roleplay-bench: measures roleplay-server beside a floor (a bare gRPC
//! forwarder) on one fast fake upstream, each server in its own process so
//! its CPU and memory are read from /proc alone. See BENCHMARKS.md.
//!
//! `roleplay-bench --quick` runs every scenario at toy sizes in seconds (CI
//! runs it so the harness cannot rot); `roleplay-bench` runs the full set and
//! writes BENCHMARKS.md. `roleplay-bench --peer litellm` measures LiteLLM's
//! proxy beside the floor and roleplay-server instead (not part of `--quick`;
//! installs LiteLLM from PyPI once). Loopback only; every run is bounded and
//! stops itself.

mod clients;
mod floor;
mod load;
mod peer;
mod per_chunk;
mod process;
mod replicas;
mod report;
mod steady;
mod upstream;

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(about = "Benchmarks roleplay-server against a bare forwarding floor")]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Toy sizes: seconds, not minutes. Prints the report instead of writing it.
    #[arg(long)]
    quick: bool,
    /// Run only these scenarios (numbers as in BENCHMARKS.md, e.g. `--only 1,5`).
    #[arg(long, value_delimiter = ',')]
    only: Vec<u8>,
    /// Where the report goes: BENCHMARKS.md unless given; with `--peer`,
    /// printed unless given.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Measure a peer beside the floor and roleplay-server in the same run
    /// (BENCHMARKS.md §10) instead of the scenarios. Not part of `--quick`.
    #[arg(long, value_enum, conflicts_with_all = ["quick", "only"])]
    peer: Option<Peer>,
    /// PostgreSQL for the persistence scenario (a schema of its own is made).
    #[arg(long, env = "TEST_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum Peer {
    /// LiteLLM's proxy, pinned (peer.rs), installed into target/peer.
    Litellm,
}

#[derive(Subcommand)]
enum Command {
    /// Internal: serve the floor (the bench starts it as a child process).
    Floor {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        upstream: String,
    },
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Some(Command::Floor { listen, upstream }) = args.command {
        floor::serve(listen, upstream).await;
        return;
    }
    let server = process::server_binary();
    if !server.is_file() {
        // `cargo run --bin roleplay-bench` builds the bench alone.
        eprintln!(
            "roleplay-bench measures {}, which is not built: run `cargo build --release --bins` first",
            server.display()
        );
        std::process::exit(2);
    }
    if let Some(Peer::Litellm) = args.peer {
        match peer::run_litellm().await {
            Ok(report) => match &args.out {
                Some(out) => {
                    std::fs::write(out, report).expect("write the report");
                    println!("wrote {}", out.display());
                }
                None => println!("{report}"),
            },
            Err(why) => {
                eprintln!("roleplay-bench --peer litellm: {why}");
                std::process::exit(1);
            }
        }
        return;
    }
    let mut sizes = if args.quick { load::Sizes::quick() } else { load::Sizes::full() };
    if !args.only.is_empty() {
        sizes = sizes.only(&args.only);
    }
    // Scenario 12 (replicas.rs) runs after the others; `--only 12` runs it alone.
    let mut report = if args.only.is_empty() || args.only.iter().any(|&n| n != 12) {
        tokio::time::timeout(
            Duration::from_secs(if args.quick { 120 } else { 1800 }),
            load::run_all(sizes, &args.postgres),
        )
        .await
        .expect("the benchmark ran past its time limit")
    } else {
        format!("Machine: {}.\n", report::machine())
    };
    if args.only.is_empty() || args.only.contains(&12) {
        let sizes = if args.quick { replicas::ReplicaSizes::quick() } else { replicas::ReplicaSizes::full() };
        let section = tokio::time::timeout(
            Duration::from_secs(if args.quick { 60 } else { 900 }),
            replicas::run(sizes, &args.postgres),
        )
        .await
        .expect("scenario 12 ran past its time limit");
        report.push_str(&section);
    }
    if args.quick {
        println!("{report}");
        println!("bench: 1 passed, 0 failed");
    } else {
        let out = args.out.unwrap_or_else(|| PathBuf::from("BENCHMARKS.md"));
        std::fs::write(&out, report).expect("write the report");
        println!("wrote {}", out.display());
    }
}
