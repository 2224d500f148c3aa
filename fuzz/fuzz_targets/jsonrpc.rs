//! The JSON-RPC decoder: any bytes as a request or a batch, each request
//! read (method name, params, id) and an answer written for it. Nothing
//! may panic.

#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    rpc_runtime::__fuzz::jsonrpc(bytes);
});
