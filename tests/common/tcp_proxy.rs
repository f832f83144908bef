//! A TCP forwarder on loopback that a test can cut and restore, to make a
//! service (PostgreSQL) unreachable for one server without touching the
//! service itself or other tests.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct TcpProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    target: SocketAddr,
    running: CancellationToken,
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let running = CancellationToken::new();
        tokio::spawn(forward(listener, target, running.clone()));
        Self { addr, target, running }
    }

    /// Closes every forwarded connection and refuses new ones.
    pub fn cut(&mut self) {
        self.running.cancel();
    }

    /// Accepts connections again, on the same address.
    pub async fn restore(&mut self) {
        self.running = CancellationToken::new();
        let listener = TcpListener::bind(self.addr).await.expect("rebind the proxy");
        tokio::spawn(forward(listener, self.target, self.running.clone()));
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.running.cancel();
    }
}

async fn forward(listener: TcpListener, target: SocketAddr, running: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = running.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut client, _)) = accepted else { continue };
        let running = running.clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(target).await else { return };
            tokio::select! {
                () = running.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
            }
        });
    }
}
