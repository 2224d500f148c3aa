//! Envelope bodies for the answers hyper writes itself. A request that is
//! not valid HTTP/1.1 (400), whose target is too long (414) or whose
//! header fields are too large (431) never reaches the router: hyper
//! answers it with a bare head (`connection: close`, `content-length: 0`)
//! and closes. The connection's IO (`budget::TimedIo`) sees that head go
//! out and writes in its place the same status with an envelope body, so
//! that every answer of the server is one. The router's own answers always
//! have a body, so they never look like these.

use crate::RpcError;

/// The answer to write instead of `head`, if `head` is one of hyper's bare
/// error answers.
pub(crate) fn with_envelope(head: &[u8]) -> Option<Vec<u8>> {
    // hyper's bare answers are a status line, two fields and a date.
    if head.len() > 256 {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let status = text.strip_prefix("HTTP/1.1 ")?;
    let code: u16 = status.get(..3)?.parse().ok()?;
    let message = match code {
        400 => "the request is not valid HTTP/1.1",
        414 => "the request target is longer than the server reads",
        431 => "the request's header fields are larger than the server reads",
        _ => return None,
    };
    let bare = text.ends_with("\r\n\r\n")
        && text.contains("\r\nconnection: close\r\n")
        && text.contains("\r\ncontent-length: 0\r\n");
    if !bare {
        return None;
    }
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let date = lines.find(|line| line.starts_with("date: "));
    let body = crate::envelope::encode_response(&Err(RpcError::new(code, message)), None);
    let mut out = format!(
        "{status_line}\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    if let Some(date) = date {
        out.push_str(date);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::with_envelope;

    #[test]
    fn hypers_bare_errors_get_envelopes_and_nothing_else_changes() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sat, 05 Dec 2026 18:24:14 GMT\r\n\r\n";
        let out = String::from_utf8(with_envelope(bare).expect("rewritten")).expect("utf-8");
        let (head, body) = out.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("date: Sat, 05 Dec 2026"));
        assert!(
            body.starts_with(r#"{"code":431,"success":false,"message":"#),
            "{body}"
        );
        // The router's answers carry bodies; other statuses are left alone.
        let answered = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n";
        assert!(with_envelope(answered).is_none());
        let other =
            b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert!(with_envelope(other).is_none());
        assert!(with_envelope(b"HTTP/1.1 200 OK\r\n\r\n").is_none());
    }
}
