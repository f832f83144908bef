//! Scenario 11, the realistic load: sends arriving at a steady rate while a
//! thousand replies are already streaming. Each rate runs on the floor and on
//! roleplay-server under the same background, and the added time to first
//! token of the arriving sends is read at p50 and p99. Rates go up until one
//! does not hold (added p99 above 2 ms, or a send not served).

use std::{
    fmt::Write as _,
    sync::{Arc, atomic::AtomicUsize},
    time::Duration,
};

use roleplay_server::api::pb::message_service_client::MessageServiceClient;
use tokio::time::{Instant, MissedTickBehavior};

use crate::{
    clients::{OnRefusal, Roleplay, STREAMS_PER_CONNECTION, Stats, generations_counted, one_generation},
    process::Server,
    report::{ms, percentile},
    upstream::Shape,
};

/// The added p99 a rate must stay within to hold.
const HOLDS_WITHIN: Duration = Duration::from_millis(2);

pub struct SteadySizes {
    pub background: usize,
    pub rates: Vec<u32>,
    pub seconds: u32,
}

/// The arriving sends' reply: 50 chunks of 16 bytes, one every 20 ms.
const ARRIVING: Shape = Shape { chunks: 50, chunk_bytes: 16, interval: Duration::from_millis(20) };

/// One server under one rate: the background started and streaming, then
/// `rate` sends a second for `seconds`.
struct Run {
    arriving: Stats,
    background_started: usize,
}

async fn run(server: &Server, background: &[String], arriving: &[String], rate: u32) -> Run {
    let background_channels = server.channels(background.len().div_ceil(STREAMS_PER_CONNECTION)).await;
    let started = Arc::new(AtomicUsize::new(0));
    let (ids, counter) = (background.to_vec(), Arc::clone(&started));
    let load =
        tokio::spawn(
            async move { generations_counted(&background_channels, &ids, &counter, None, OnRefusal::Retry).await },
        );
    let deadline = Instant::now() + Duration::from_secs(60);
    while started.load(std::sync::atomic::Ordering::Relaxed) < background.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let background_started = started.load(std::sync::atomic::Ordering::Relaxed);

    let channels = server.channels(arriving.len().div_ceil(STREAMS_PER_CONNECTION)).await;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut sends = Vec::with_capacity(arriving.len());
    for (i, chat) in arriving.iter().enumerate() {
        ticks.tick().await;
        let client = MessageServiceClient::new(channels[i % channels.len()].clone());
        let chat = chat.clone();
        sends.push(tokio::spawn(
            async move { one_generation(client, chat, &AtomicUsize::new(0), OnRefusal::Count).await },
        ));
    }
    let mut arriving = Stats::default();
    for send in sends {
        if let Ok(stats) = send.await {
            arriving.absorb(stats);
        }
    }
    let _ = load.await;
    Run { arriving, background_started }
}

pub async fn steady(floor: &Server, roleplay: &Roleplay, sizes: &SteadySizes) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## 11. Steady arrivals while {} replies stream\n", sizes.background);
    let max_arrivals = sizes.rates.iter().max().copied().unwrap_or(0) as usize * sizes.seconds as usize;
    // The background outlasts the arrivals, so they all meet a full server.
    let background_shape =
        Shape { chunks: (sizes.seconds as usize + 4) * 50, chunk_bytes: 16, interval: Duration::from_millis(20) };
    let _ = writeln!(
        out,
        "{} replies stream in the background (16 bytes every 20 ms), then sends arrive at a steady rate for {} s, each a reply of {} chunks of 16 bytes every 20 ms. Added TTFT = roleplay's p99 minus the floor's under the same load. A rate holds when the added p99 is at most {} and every arriving send was served.\n",
        sizes.background,
        sizes.seconds,
        ARRIVING.chunks,
        ms(HOLDS_WITHIN)
    );
    let _ = writeln!(
        out,
        "| sends/s | floor TTFT p50 / p99 | roleplay TTFT p50 / p99 | added p50 / p99 | roleplay served / refused / failed | background live | holds |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    let background_chats = roleplay.chats(sizes.background, background_shape).await;
    let arriving_chats = roleplay.chats(max_arrivals, ARRIVING).await;
    for &rate in &sizes.rates {
        let count = rate as usize * sizes.seconds as usize;
        let mut f =
            run(floor, &vec![background_shape.model(); sizes.background], &vec![ARRIVING.model(); count], rate).await;
        let mut r = run(&roleplay.server, &background_chats, &arriving_chats[..count], rate).await;
        let (f50, f99) = (percentile(&mut f.arriving.first_token, 0.5), percentile(&mut f.arriving.first_token, 0.99));
        let (r50, r99) = (percentile(&mut r.arriving.first_token, 0.5), percentile(&mut r.arriving.first_token, 0.99));
        let served = r.arriving.first_token.len();
        let added99 = r99.saturating_sub(f99);
        let holds = added99 <= HOLDS_WITHIN && served == count;
        let _ = writeln!(
            out,
            "| {rate} | {} / {} | {} / {} | {} / {} | {served} / {} / {} | {} | {} |",
            ms(f50),
            ms(f99),
            ms(r50),
            ms(r99),
            ms(r50.saturating_sub(f50)),
            ms(added99),
            r.arriving.refused.len(),
            r.arriving.errors,
            r.background_started,
            if holds { "yes" } else { "no" }
        );
        if !holds {
            break;
        }
    }
    out
}
