//! Forwarded calls through a RabbitMQ node that listens only on TLS
//! (`amqps://`) and asks for a client certificate: the test makes the CA,
//! the node's certificate for `localhost` and the client's with rcgen,
//! starts the node beside the system broker, and stops it at the end.

use rpc_runtime::{Address, BrokerTls, Server};
use rpc_tests::rabbit::{Node, free_port};
use rpc_tests::{Http, eventually};
use serde_json::json;

mod procs {
    use rpc_runtime::rpc;
    use serde_json::Value;

    /// Answers its args.
    #[rpc(procedure = "echo", scope = "tls")]
    pub async fn echo(args: Value) -> Value {
        args
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
