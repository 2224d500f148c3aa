//! JSON-RPC 2.0 requests on either transport: each request becomes a
//! [`Call`](crate::Call) for the pipeline, as an envelope does, and the
//! answers are encoded as JSON-RPC responses (a batch's as one array).
//! The codec itself is `crate::jsonrpc`.

use super::Gateway;
use crate::jsonrpc::{self, Incoming, Request};
use crate::pipeline::{Entry, Pipeline};
use crate::{Call, Data, RpcError};
use futures_util::future::BoxFuture;

/// What a body or frame asks for: how many calls it runs, and its answer
/// (`None` when it held only notifications).
pub(crate) struct Work {
    pub(crate) calls: usize,
    pub(crate) answer: BoxFuture<'static, Option<Vec<u8>>>,
}

/// Starts the calls of a JSON-RPC body or frame. `prepare` turns a request
/// into the transport's call (identity, metadata), or refuses it.
pub(crate) fn work(
    gateway: &Gateway,
    incoming: Incoming,
    mut prepare: impl FnMut(Request) -> Result<Box<Call>, RpcError>,
) -> Work {
    let pipeline = gateway.pipeline.clone();
    match incoming {
        Incoming::Single(Err(refused)) => Work {
            calls: 0,
            answer: Box::pin(std::future::ready(non_empty(jsonrpc::write_refused(
                &refused,
            )))),
        },
        Incoming::Single(Ok(request)) => {
            let id = request.id.clone();
            let call = prepare(request);
            Work {
                calls: 1,
                answer: Box::pin(async move {
                    let result = run(&pipeline, call).await;
                    jsonrpc::response_to(id, &result)
                }),
            }
        }
        Incoming::Batch(items) => {
            let calls = items.iter().filter(|item| item.is_ok()).count();
            let items: Vec<_> = items
                .into_iter()
                .map(|item| match item {
                    Ok(request) => {
                        let id = request.id.clone();
                        Ok((id, prepare(request)))
                    }
                    Err(refused) => Err(refused),
                })
                .collect();
            Work {
                calls,
                answer: Box::pin(async move {
                    let answers = futures_util::future::join_all(items.into_iter().map(|item| {
                        let pipeline = &pipeline;
                        async move {
                            match item {
                                Ok((id, call)) => {
                                    let result = run(pipeline, call).await;
                                    let mut out = Vec::new();
                                    if let Some(id) = id {
                                        jsonrpc::write_response(&mut out, &id, &result);
                                    }
                                    out
                                }
                                Err(refused) => jsonrpc::write_refused(&refused),
                            }
                        }
                    }))
                    .await;
                    jsonrpc::write_batch(&answers)
                }),
            }
        }
    }
}

async fn run(pipeline: &Pipeline, call: Result<Box<Call>, RpcError>) -> Result<Data, RpcError> {
    match call {
        Ok(call) => pipeline.dispatch(call, Entry::Transport).await,
        Err(error) => Err(error),
    }
}

/// The call a request makes, from a client of `gateway`.
pub(crate) fn call(gateway: &Gateway, request: Request, source: &super::Source) -> Box<Call> {
    let pipeline = &gateway.pipeline;
    let address = jsonrpc::address(&request.method, |address| pipeline.knows(address));
    let mut call = super::client_call(gateway, address, request.args, source);
    super::continue_trace(
        &mut call,
        request.traceparent.as_deref(),
        request.tracestate,
    );
    call
}

fn non_empty(bytes: Vec<u8>) -> Option<Vec<u8>> {
    (!bytes.is_empty()).then_some(bytes)
}
