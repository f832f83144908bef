//! Scenario 13, CPU per chunk by reply length: N replies live at once, of 50
//! and of 500 chunks, on the floor and on roleplay-server. A reply's fixed
//! costs (the send, its rows, the prompt, the final write) are spread over
//! its chunks, so the two lengths tell the cost of a reply from the cost of
//! streaming it. Replies start at a pace (100 every 100 ms) and sends refused
//! by admission are retried, so every reply runs and N are live together.

use std::{fmt::Write as _, time::Duration};

use crate::{
    clients::{OnRefusal, Roleplay},
    load::{Measured, measure_paced},
    process::Server,
    report::ratio,
    upstream::Shape,
};

pub struct PerChunkSizes {
    pub concurrency: Vec<usize>,
    pub chunks: Vec<usize>,
    pub interval: Duration,
}

/// How many replies start together, and how often.
const PACE: (usize, Duration) = (100, Duration::from_millis(100));

/// CPU per upstream chunk forwarded, in µs (the bytes the clients received
/// over the chunk size: roleplay-server may merge chunks for a slow client).
fn per_chunk(run: &Measured, chunk_bytes: usize) -> f64 {
    run.cpu.as_secs_f64() * 1e6 / (run.stats.bytes / chunk_bytes as u64).max(1) as f64
}

/// Replies whose every byte arrived.
fn whole(run: &Measured, shape: Shape) -> u64 {
    run.stats.bytes / (shape.chunks * shape.chunk_bytes) as u64
}

pub async fn per_chunk_section(floor: &Server, roleplay: &Roleplay, sizes: &PerChunkSizes) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## 13. CPU per chunk by reply length\n");
    let _ = writeln!(
        out,
        "N replies live at once, each of C chunks of 16 bytes, one every {} ms; started 100 every 100 ms, refusals retried after their RetryInfo. CPU is the server process's user+system time divided by the chunks it forwarded, each reply's fixed costs (the send, its rows, the final write) included.\n",
        sizes.interval.as_millis()
    );
    let _ = writeln!(
        out,
        "| live | chunks | floor CPU/chunk | roleplay CPU/chunk | ratio | floor / roleplay replies received whole | roleplay completed | roleplay retries |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for &n in &sizes.concurrency {
        for &chunks in &sizes.chunks {
            let shape = Shape { chunks, chunk_bytes: 16, interval: sizes.interval };
            let f = measure_paced(floor, &vec![shape.model(); n], Some(PACE), OnRefusal::Retry).await;
            let chats = roleplay.chats(n, shape).await;
            let r = measure_paced(&roleplay.server, &chats, Some(PACE), OnRefusal::Retry).await;
            let (f_cpu, r_cpu) = (per_chunk(&f, shape.chunk_bytes), per_chunk(&r, shape.chunk_bytes));
            let _ = writeln!(
                out,
                "| {n} | {chunks} | {f_cpu:.1} µs | {r_cpu:.1} µs | {} | {} / {} of {n} | {} | {} |",
                ratio(r_cpu, f_cpu),
                whole(&f, shape),
                whole(&r, shape),
                r.stats.completed,
                r.stats.retries,
            );
        }
    }
    out
}
