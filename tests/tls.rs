//! TLS, with certificates the tests make (rcgen): forwarded calls through a
//! RabbitMQ node that listens only on TLS (`amqps://`) and asks for a
//! client certificate (started beside the system broker, stopped at the
//! end); and `HttpClient` and `WsClient` over `https://` and `wss://`
//! through a TLS-terminating proxy in front of a server, as a load
//! balancer would be.

use rpc_runtime::{Address, BrokerTls, HttpClient, Identity, Server, WsClient};
use rpc_tests::rabbit::{Node, free_port};
use rpc_tests::{Http, eventually};
use serde_json::json;

mod procs {
    use rpc_runtime::{Context, rpc};
    use serde_json::Value;

    /// Answers its args.
    #[rpc(procedure = "echo", scope = "tls")]
    pub async fn echo(args: Value) -> Value {
        args
    }

    /// Pushes its args to the calling connection.
    #[rpc(procedure = "push-me", scope = "tls")]
    pub async fn push_me(args: Value, ctx: Context) -> bool {
        match (ctx.server(), ctx.connection_id()) {
            (Some(server), Some(id)) => server.send_to_connection(id, args),
            _ => false,
        }
    }
}

/// A CA, and certificates it signed for the node and for a client.
struct Certificates {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn certificates() -> Certificates {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "rpc-runtime test CA");
    let ca_key = KeyPair::generate().expect("key");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let signed = |names: Vec<String>, common_name: &str| {
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    Certificates {
        ca: ca.pem(),
        server: signed(vec!["localhost".into(), "127.0.0.1".into()], "localhost"),
        client: signed(vec!["client".into()], "client"),
    }
}

#[tokio::test]
async fn forwarded_calls_go_through_an_amqps_node_with_client_certificates() {
    let certificates = certificates();
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("rpc-tls-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("folder");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let (ca, cert, key) = (
        write("ca.pem", &certificates.ca),
        write("server.pem", &certificates.server.0),
        write("server.key", &certificates.server.1),
    );
    let config = format!(
        "listeners.tcp = none\nlisteners.ssl.default = {port}\n\
         ssl_options.cacertfile = {ca}\nssl_options.certfile = {cert}\nssl_options.keyfile = {key}\n\
         ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n\
         loopback_users = none\n"
    );
    let node = Node::start("rpctls", port, "RPCTLSCOOKIE", &config);
    let uri = format!("amqps://guest:guest@localhost:{port}/%2f");

    // The node's certificate is not trusted without the CA; the node
    // refuses a client without a certificate.
    for tls in [
        BrokerTls::new(),
        BrokerTls::new().ca_pem(certificates.ca.clone()),
    ] {
        let refused = Server::builder()
            .broker(&uri)
            .broker_tls(tls)
            .host_none()
            .build()
            .expect("builds")
            .start()
            .await;
        assert!(refused.is_err(), "connected without what TLS asks for");
    }

    let tls = BrokerTls::new()
        .ca_pem(certificates.ca.clone())
        .client_certificate(certificates.client.0.clone(), certificates.client.1.clone());
    let handler = Server::builder()
        .name("tls-handler")
        .broker(&uri)
        .broker_tls(tls.clone())
        .host(|address| address.scope == "tls")
        .build()
        .expect("builds")
        .start()
        .await
        .expect("the handler server connects over TLS");
    let gateway = Server::builder()
        .name("tls-gateway")
        .http("127.0.0.1:0")
        .broker(&uri)
        .broker_tls(tls)
        .host_none()
        .build()
        .expect("builds")
        .start()
        .await
        .expect("the gateway connects over TLS");
    let echo = Address::new("tls", "echo", "1");
    eventually("the gateway to hear of tls/echo", || {
        gateway.procedures().iter().any(|spec| spec.address == echo)
    })
    .await;
    let http = Http::new(gateway.http_addr().expect("http"));
    for n in 0..20 {
        let (status, body) = http
            .call(json!({"scope": "tls", "procedure": "echo", "args": {"n": n}}))
            .await;
        assert_eq!(
            (status, body["data"].clone()),
            (200, json!({"n": n})),
            "{body}"
        );
    }
    gateway.shutdown().await.expect("gateway stops");
    handler.shutdown().await.expect("handler stops");
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Accepts TLS on a loopback port with the given certificate and key, and
/// relays each connection's bytes to `target`.
async fn tls_proxy(
    cert_pem: &str,
    key_pem: &str,
    target: std::net::SocketAddr,
) -> std::net::SocketAddr {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key");
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn clients_call_over_https_and_wss() {
    let certificates = certificates();
    let server = rpc_tests::start(Server::builder()).await;
    let proxy = tls_proxy(
        &certificates.server.0,
        &certificates.server.1,
        server.http_addr().expect("http"),
    )
    .await;
    let echo = Address::new("tls", "echo", "1");

    // Not trusted without the CA.
    let untrusted = HttpClient::new(format!("https://localhost:{}", proxy.port()));
    assert!(
        untrusted
            .call_json(echo.clone(), json!({"n": 0}))
            .await
            .is_err()
    );

    let http = HttpClient::new(format!("https://localhost:{}", proxy.port()))
        .with_root_certificate_pem(&certificates.ca);
    let answer = http
        .call_json(echo.clone(), json!({"n": 1}))
        .await
        .expect("a call over https");
    assert_eq!(answer, json!({"n": 1}));

    let ws = WsClient::builder(format!("wss://localhost:{}/", proxy.port()))
        .root_certificate_pem(certificates.ca.clone())
        .identity(Identity::with_authorization("Bearer someone"))
        .connect()
        .await
        .expect("a connection over wss");
    let mut pushes = ws.server_messages();
    assert_eq!(
        ws.call_json(echo, json!({"n": 2}))
            .await
            .expect("a call over wss"),
        json!({"n": 2})
    );
    let pushed = ws
        .call_json(Address::new("tls", "push-me", "1"), json!({"hello": "tls"}))
        .await
        .expect("push-me");
    assert_eq!(pushed, json!(true));
    let push = tokio::time::timeout(std::time::Duration::from_secs(5), pushes.next())
        .await
        .expect("a push within 5 s")
        .expect("open");
    assert_eq!(push, json!({"hello": "tls"}));
    server.shutdown().await.expect("stops");
}
