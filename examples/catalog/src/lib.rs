//! Procedures of a small product catalog, defined in a crate of their own.
//!
//! A binary serves them only if it names this crate somewhere, for instance
//! with `use catalog as _;`: otherwise the linker drops the crate and its
//! registrations with it.

use rpc_runtime::{Context, JsonSchema, NoArgs, RpcError, rpc};
use serde::{Deserialize, Serialize};

/// A product for sale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Product {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its price, in cents.
    pub price_cents: u64,
}

/// Names a product.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductId {
    /// The product's id.
    #[schemars(range(min = 1))]
    pub id: u32,
}

/// How many of a product are in stock, and which server counted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Stock {
    /// Units in stock.
    pub units: u32,
    /// The server that answered.
    pub counted_by: String,
}

/// A product with its stock.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProductView {
    /// The product.
    pub product: Product,
    /// Its stock.
    pub stock: Stock,
}

fn products() -> Vec<Product> {
    vec![
        Product {
            id: 1,
            name: "Teapot".into(),
            price_cents: 2_500,
        },
        Product {
            id: 2,
            name: "Kettle".into(),
            price_cents: 4_000,
        },
        Product {
            id: 3,
            name: "Cup".into(),
            price_cents: 600,
        },
    ]
}

/// Lists every product.
#[rpc(procedure = "list-products", scope = "catalog")]
pub async fn list_products() -> Vec<Product> {
    products()
}

/// One product with its stock level.
#[rpc(procedure = "get-product", scope = "catalog")]
pub async fn get_product(args: ProductId, ctx: Context) -> Result<ProductView, RpcError> {
    let product = products()
        .into_iter()
        .find(|p| p.id == args.id)
        .ok_or_else(|| RpcError::not_found(format!("no product {}", args.id)))?;
    let stock = ctx.call::<stock_level>(args).await?;
    Ok(ProductView { product, stock })
}

/// Units in stock of one product; only other procedures may ask.
#[rpc(procedure = "stock-level", scope = "warehouse", internal)]
pub async fn stock_level(args: ProductId, ctx: Context) -> Stock {
    Stock {
        units: args.id * 7 % 11,
        counted_by: ctx
            .server()
            .map_or_else(String::new, |s| s.name().to_owned()),
    }
}

/// The number of products; takes no args.
#[rpc(procedure = "count-products", scope = "catalog")]
pub async fn count_products(_: NoArgs) -> usize {
    products().len()
}
