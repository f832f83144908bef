//! A private `redis-server` for one test, on a loopback port of its own, with
//! no persistence: a test can kill it mid-reply and start it again, empty, on
//! the same port. Talks to it over raw TCP (`PING` / `+PONG`), so the tests
//! need no Redis client.

use std::{process::Stdio, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::{Child, Command},
    time::Instant,
};

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a free loopback port and waits until it
    /// answers `PING`. Panics (with how to fix it) when redis-server is not
    /// installed: tests that need it must not pass by skipping.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a free port")
            .local_addr()
            .expect("local addr")
            .port();
        let mut server = Self { port, child: None };
        server.launch().await;
        server
    }

    /// `redis://127.0.0.1:<port>/`, for ROLEPLAY_REDIS_URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL, and waits until the process has exited.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // tokio's kill sends SIGKILL and reaps the child.
            child.kill().await.expect("kill redis-server");
        }
    }

    /// Starts redis-server again on the same port with the same flags (it
    /// comes back empty: nothing is saved). Kills the running one first, if
    /// any.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.launch().await;
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    async fn launch(&mut self) {
        // The port can be briefly unavailable right after a kill; try a few
        // times before giving up.
        let mut last_failure = String::new();
        for _ in 0..5 {
            let mut child = match Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
            {
                Ok(child) => child,
                Err(err) => panic!(
                    "could not run `redis-server` ({err}): the replica tests need a Redis server binary on PATH \
                     (Debian/Ubuntu: apt-get install redis-server)"
                ),
            };
            match wait_for_pong(self.port, &mut child).await {
                Ok(()) => {
                    self.child = Some(child);
                    return;
                }
                Err(failure) => {
                    let _ = child.kill().await;
                    last_failure = failure;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        panic!("redis-server on port {} did not start: {last_failure}", self.port);
    }
}

/// Waits (up to 10 s) until the server on `port` answers `PING` with `+PONG`.
async fn wait_for_pong(port: u16, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("redis-server exited with {status}"));
        }
        match ping(port).await {
            Ok(()) => return Ok(()),
            Err(err) if Instant::now() > deadline => return Err(format!("no PONG within 10 s: {err}")),
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

async fn ping(port: u16) -> Result<(), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        stream.write_all(b"PING\r\n").await.map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        let mut buf = [0_u8; 64];
        while !answer.ends_with(b"\r\n") {
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        if answer.starts_with(b"+PONG") {
            Ok(())
        } else {
            Err(format!("answered {:?}", String::from_utf8_lossy(&answer)))
        }
    };
    tokio::time::timeout(Duration::from_secs(1), exchange).await.map_err(|_| "PING timed out".to_owned())?
}
