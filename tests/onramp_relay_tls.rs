//! The relay client's transport security and AUTH against a real server (aiosmtpd with a test
//! CA and leaf certificate made by `openssl`): STARTTLS required with AUTH, implicit TLS, a
//! wrong password (retried, not dead-lettered), and an untrusted certificate under
//! opportunistic STARTTLS (a temporary failure, never a fall-back to plain text).

mod common;
mod onramp_common;

use std::path::Path;
use std::time::Duration;

use faxgate::config::{Config, RelayMode, RelaySecurity};
use faxgate::delivery::{Delivery, DeliveryError};
use faxgate::job::MailEnvelope;
use faxgate::scheduler::CauseClass;
use onramp_common::{Relay, free_port};

fn config(port: u16, security: RelaySecurity, ca: Option<&Path>) -> Config {
    let mut c = Config::default();
    c.relay.mode = RelayMode::Smtp;
    c.relay.host = "127.0.0.1".into();
    c.relay.port = port;
    c.relay.security = security;
    c.relay.timeout = Duration::from_secs(20);
    c.relay.tls_ca_file = ca.map(Path::to_path_buf);
    c
}

fn envelope() -> MailEnvelope {
    MailEnvelope {
        from: "fax-gateway@example.com".into(),
        to: vec!["sales@example.com".into()],
        envid: None,
    }
}

const MESSAGE: &[u8] = b"From: fax-gateway@example.com\r\nTo: sales@example.com\r\n\
    Subject: tls\r\nMessage-ID: <t.1@example.com>\r\nDate: Mon, 30 Nov 2026 00:53:20 +0000\r\n\r\nhello\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_required_with_auth_and_implicit_tls() {
    let d = tempfile::tempdir().unwrap();
    let (ca, cert, key) = common::make_test_certs(d.path());
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());

    // STARTTLS required, AUTH after TLS.
    let port = free_port();
    let relay = Relay::start(
        port,
        &d.path().join("r1"),
        &[
            "--cert",
            cert,
            "--key",
            key,
            "--starttls",
            "--auth",
            "faxgate:s3cret",
        ],
    );
    let mut c = config(port, RelaySecurity::Starttls, Some(&ca));
    c.relay.username = "faxgate".into();
    c.relay.password = Some("s3cret".into());
    let a = Delivery::from_config(&c)
        .unwrap()
        .deliver(&envelope(), MESSAGE)
        .await
        .unwrap();
    assert!(a.detail.starts_with("250"), "{}", a.detail);
    let got = relay.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["tls"], true);
    assert_eq!(got[0].0["auth_login"], "faxgate");
    assert_eq!(got[0].1, MESSAGE);

    // A wrong password: the operator's fault, retried (not a dead letter), nothing sent.
    c.relay.password = Some("wrong".into());
    let e = Delivery::from_config(&c)
        .unwrap()
        .deliver(&envelope(), MESSAGE)
        .await
        .unwrap_err();
    assert!(matches!(e, DeliveryError::Config(_)), "{e:?}");
    assert_eq!(e.class(), CauseClass::RelayTemporary);
    assert_eq!(relay.messages().len(), 1);
    drop(relay);

    // Implicit TLS (port 465 style).
    let port = free_port();
    let relay = Relay::start(
        port,
        &d.path().join("r2"),
        &["--cert", cert, "--key", key, "--implicit-tls"],
    );
    let c = config(port, RelaySecurity::Tls, Some(&ca));
    Delivery::from_config(&c)
        .unwrap()
        .deliver(&envelope(), MESSAGE)
        .await
        .unwrap();
    let got = relay.messages();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["tls"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_never_falls_back_to_plain() {
    let d = tempfile::tempdir().unwrap();
    let (_ca, cert, key) = common::make_test_certs(d.path());
    let port = free_port();
    let relay = Relay::start(
        port,
        &d.path().join("r"),
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--starttls",
        ],
    );
    // No tls_ca_file: the test CA is not trusted.
    let c = config(port, RelaySecurity::Opportunistic, None);
    let e = Delivery::from_config(&c)
        .unwrap()
        .deliver(&envelope(), MESSAGE)
        .await
        .unwrap_err();
    assert_eq!(e.class(), CauseClass::RelayTemporary, "{e}");
    assert!(relay.messages().is_empty());
}
