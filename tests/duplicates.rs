//! Two registrations of one (scope, procedure, version) stop the server
//! from starting, with every clash listed. This is its own test binary, as
//! the clash is linked into whatever names it.

use rpc_runtime::{Error, Server, rpc};

mod first {
    use super::rpc;

    /// One registration of shop/buy@1.
    #[rpc(procedure = "buy", scope = "shop")]
    pub async fn buy() -> u32 {
        1
    }

    /// One registration of shop/sell@2.
    #[rpc(procedure = "sell", scope = "shop", version = 2)]
    pub async fn sell() -> u32 {
        1
    }
}

mod second {
    use super::rpc;

    /// Another registration of shop/buy@1.
    #[rpc(procedure = "buy", scope = "shop", version = "1")]
    pub async fn buy() -> u32 {
        2
    }

    /// Another registration of shop/sell@2.
    #[rpc(procedure = "sell", scope = "shop", version = "2")]
    pub async fn sell() -> u32 {
        2
    }

    /// Not a clash: another version.
    #[rpc(procedure = "sell", scope = "shop", version = "3")]
    pub async fn sell_v3() -> u32 {
        3
    }
}

#[test]
fn duplicate_registrations_fail_startup_listing_every_clash() {
    let error = Server::builder()
        .build()
        .err()
        .expect("the build must fail");
    let Error::DuplicateProcedures(clashes) = &error else {
        panic!("unexpected error: {error}");
    };
    assert_eq!(clashes.len(), 2, "{clashes:?}");
    let message = error.to_string();
    assert!(
        message.contains("shop/buy@1 is registered 2 times"),
        "{message}"
    );
    assert!(
        message.contains("shop/sell@2 is registered 2 times"),
        "{message}"
    );
    assert!(
        message.contains("duplicates.rs"),
        "the places are named: {message}"
    );
    assert!(!message.contains("sell@3"), "{message}");
    // Filtering what a server hosts does not hide a clash.
    assert!(Server::builder().host_none().build().is_err());
}
