//! The web UI served by the server itself: the page with its strict CSP, the
//! hashed assets cached for good, revalidation by ETag, and the Host check.

mod common;

use common::{Db, TestServer};

fn http() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_with_the_right_headers() {
    let server = TestServer::start(Db::Sqlite).await;
    let base = format!("http://{}", server.addr);

    let page = http().get(format!("{base}/")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert!(headers["content-type"].to_str().expect("ascii").starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().expect("ascii").to_owned();
    for directive in ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let html = page.text().await.expect("html");
    assert!(!html.contains("<script>"), "no inline script");

    // Every asset the page names is served, cached for good.
    let assets: Vec<&str> =
        html.split('"').filter_map(|part| part.strip_prefix("./assets/").or(part.strip_prefix("/assets/"))).collect();
    assert!(assets.len() >= 2, "the page loads its script and styles from assets/");
    for asset in assets {
        let answer = http().get(format!("{base}/assets/{asset}")).send().await.expect("asset");
        assert_eq!(answer.status(), 200, "{asset}");
        assert_eq!(answer.headers()["cache-control"], "public, max-age=31536000, immutable");
        let kind = answer.headers()["content-type"].to_str().expect("ascii").to_owned();
        assert!(kind.contains("javascript") || kind.contains("css"), "{asset}: {kind}");
    }

    let etag = headers["etag"].to_str().expect("ascii").to_owned();
    let again = http().get(format!("{base}/")).header("if-none-match", &etag).send().await.expect("revalidate");
    assert_eq!(again.status(), 304);

    assert_eq!(http().get(format!("{base}/assets/nope.js")).send().await.expect("missing").status(), 404);
    let rebound = http().get(format!("{base}/")).header("host", "evil.example").send().await.expect("rebound");
    assert_eq!(rebound.status(), 421, "DNS rebinding finds no page");
}
