//! The connection under the HTTP layer: a TCP stream that does two things actix-http cannot.
//!
//! 1. **Sends files itself.** actix-http copies every body chunk into its write buffer before
//!    the socket copies it again (and drops and reallocates that buffer after every large
//!    chunk); a single download was bound by it. A response whose body is a [`Handoff`] has its
//!    head written by actix-http (with the `Content-Length` the handler set) and an empty body;
//!    the body arms this connection's handoff slot with the file, and the connection sends the
//!    file (see `storage::fs::send`: one copy, by the kernel, from mapped page cache) the next
//!    time actix-http flushes, which is after the head has gone out in full. Until then the
//!    body stays pending, so actix-http writes nothing else (responses on a connection go one
//!    after the other). No buffer of this process, no thread.
//! 2. **Gives a request it cannot parse a JSON error.** actix-http answers a request line or
//!    head it cannot parse (a non-UTF-8 or over-long URI, a broken header) with its own empty
//!    `400` or `431` and closes, with no hook to change the body. Those answers are recognised
//!    here by their exact head (every response of the application carries a JSON body, so none
//!    has `content-length: 0` with these statuses) and given a JSON body naming the problem.

use crate::storage::FileSend;
use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// One connection's slot for a file the current response hands over. Cloned into the
/// connection's request extensions (`HttpRequest::conn_data`), so a handler can reach it.
#[derive(Clone, Default)]
pub struct HandoffSlot(Rc<RefCell<Slot>>);

#[derive(Default)]
enum Slot {
    #[default]
    Idle,
    /// Waiting for the head to go out; `Waker` wakes the body when the file is sent.
    Armed(FileSend, Option<Waker>),
    Done(io::Result<()>),
}

impl HandoffSlot {
    fn arm(&self, file: FileSend, waker: Waker) {
        *self.0.borrow_mut() = Slot::Armed(file, Some(waker));
    }

    /// How the handed-over send ended, once it has; `None` while it goes on.
    fn outcome(&self, waker: &Waker) -> Option<io::Result<()>> {
        let mut slot = self.0.borrow_mut();
        match &mut *slot {
            Slot::Armed(_, w) => {
                *w = Some(waker.clone());
                None
            }
            Slot::Done(_) => match std::mem::take(&mut *slot) {
                Slot::Done(result) => Some(result),
                _ => None,
            },
            Slot::Idle => Some(Err(io::Error::other("handed-over file was dropped"))),
        }
    }

    fn cancel(&self) {
        *self.0.borrow_mut() = Slot::Idle;
    }

    fn is_armed(&self) -> bool {
        matches!(*self.0.borrow(), Slot::Armed(..))
    }

    /// Drives an armed send; on its end, records the outcome and wakes the body.
    fn poll_send(&self, cx: &mut Context<'_>, stream: &TcpStream) -> Poll<io::Result<()>> {
        let mut slot = self.0.borrow_mut();
        let Slot::Armed(file, waker) = &mut *slot else {
            return Poll::Ready(Ok(()));
        };
        let result = std::task::ready!(file.poll_send(cx, stream));
        if let Some(w) = waker.take() {
            w.wake();
        }
        let failed = result.as_ref().err().map(|e| io::Error::new(e.kind(), e.to_string()));
        *slot = Slot::Done(result);
        Poll::Ready(failed.map_or(Ok(()), Err))
    }
}

/// The body of a response whose bytes the connection sends itself (see the module's comment).
/// actix-http sees an unsized stream that ends without a byte once the file is out; the
/// handler sets `Content-Length` with `no_chunking`.
pub struct Handoff {
    slot: HandoffSlot,
    file: Option<FileSend>,
}

impl Handoff {
    pub fn new(slot: HandoffSlot, file: FileSend) -> Handoff {
        Handoff { slot, file: Some(file) }
    }
}

impl actix_web::body::MessageBody for Handoff {
    type Error = io::Error;

    fn size(&self) -> actix_web::body::BodySize {
        actix_web::body::BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<actix_web::web::Bytes, io::Error>>> {
        if let Some(file) = self.file.take() {
            // The head is in actix-http's write buffer by now: the connection sends the file
            // once that buffer is flushed.
            self.slot.arm(file, cx.waker().clone());
            return Poll::Pending;
        }
        match self.slot.outcome(cx.waker()) {
            None => Poll::Pending,
            Some(Ok(())) => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
        }
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        // A response dropped halfway (the connection is closing): nothing more is to be sent.
        if self.file.is_none() {
            self.slot.cancel();
        }
    }
}

/// A TCP connection as the HTTP layer sees it.
pub struct Conn {
    stream: TcpStream,
    slot: HandoffSlot,
    /// Bytes this layer owes the socket before anything else (a rewritten error answer).
    owed: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            slot: HandoffSlot::default(),
            owed: Vec::new(),
        }
    }

    pub fn slot(&self) -> HandoffSlot {
        self.slot.clone()
    }

    fn poll_owed(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.owed.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.stream).poll_write(cx, &self.owed))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.owed.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        std::task::ready!(this.poll_owed(cx))?;
        if let Some(answer) = json_parse_error(buf) {
            this.owed = answer;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_owed(cx))?;
        // actix-http flushes once its whole write buffer, the handed-over response's head
        // included, is in the socket: the file's bytes come next.
        if this.slot.is_armed() {
            std::task::ready!(this.slot.poll_send(cx, &this.stream))?;
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        std::task::ready!(this.poll_owed(cx))?;
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// actix-http's own answers to a request it cannot parse, as it writes them (see
/// `h1::dispatcher`: `Response::bad_request()` and a 431 for a head over its buffer size,
/// both without a body), and what each is told as.
const PARSE_ERRORS: [(&[u8], &str, &str); 2] = [
    (
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        "HTTP/1.1 400 Bad Request",
        "Malformed request: the request line or a header could not be parsed (URIs and header values must be ASCII)",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
        "HTTP/1.1 431 Request Header Fields Too Large",
        "Request head too large: the request line and headers must fit in 32 KiB",
    ),
];

/// The JSON answer that replaces `head` when it is one of actix-http's bodiless parse-error
/// answers. The body suits both protocols: v1 clients read `error`, v2 clients `errors`.
fn json_parse_error(head: &[u8]) -> Option<Vec<u8>> {
    let (prefix, status_line, message) = PARSE_ERRORS.iter().find(|(p, ..)| head.starts_with(p))?;
    let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let body = serde_json::json!({
        "error": message,
        "errors": [{ "code": "UNSUPPORTED", "message": message, "detail": null }],
    })
    .to_string();
    // Keep actix-http's other headers (`connection: close`, `date`).
    let rest = String::from_utf8_lossy(&head[prefix.len()..end]);
    Some(
        format!(
            "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{rest}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_get_a_json_body() {
        let head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(json_parse_error(head).expect("rewritten")).expect("utf-8");
        let (h, body) = out.split_once("\r\n\r\n").expect("head and body");
        assert!(h.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"));
        assert!(h.contains(&format!("content-length: {}", body.len())));
        assert!(h.ends_with("connection: close\r\ndate: x"), "{h}");
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert!(v["error"].as_str().is_some_and(|m| m.starts_with("Malformed request")));
        assert_eq!(v["errors"][0]["code"], "UNSUPPORTED");
    }

    #[test]
    fn other_answers_pass_unchanged() {
        for head in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n{...}"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"some body bytes HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        ] {
            assert!(json_parse_error(head).is_none());
        }
    }
}
