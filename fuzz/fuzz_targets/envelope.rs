//! The envelope decoder: any bytes as an HTTP body or a WebSocket frame's
//! text, read as a call and as a frame, and a response written for it.
//! Nothing may panic.

#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    rpc_runtime::__fuzz::envelope(bytes);
});
