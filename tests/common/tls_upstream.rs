//! THE FAKE UPSTREAM OVER TLS, SPEAKING HTTP/2 as real providers do: the
//! router of [`FakeUpstream`] behind a rustls acceptor offering ALPN `h2`
//! (then `http/1.1`), served by hyper-util's auto builder. The certificate is
//! the test-only one in tests/fixtures/tls/ (SANs 127.0.0.1 and localhost);
//! a spawned server trusts it with `SSL_CERT_FILE` = [`CA_FILE`].

use std::sync::Arc;

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    },
};

use super::FakeUpstream;

/// The test CA that signed the fake's certificate, for `SSL_CERT_FILE`.
pub const CA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
const CERT: &[u8] = include_bytes!("../fixtures/tls/server.pem");
const KEY: &[u8] = include_bytes!("../fixtures/tls/server.key");

/// The fake upstream at `https://127.0.0.1:<port>`.
pub async fn start() -> FakeUpstream {
    let acceptor = TlsAcceptor::from(Arc::new(server_config()));
    FakeUpstream::start_serving("https", move |listener, app| async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    })
    .await
}

fn server_config() -> ServerConfig {
    let certs = CertificateDer::pem_slice_iter(CERT).collect::<Result<Vec<_>, _>>().expect("test certificate");
    let key = PrivateKeyDer::from_pem_slice(KEY).expect("test key");
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("certificate and key");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}
