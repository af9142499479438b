//! Socket options the HTTP layer has no setting for.
//!
//! The send timeout: actix-http has no timer while a response is being written (its keep-alive,
//! request-head and disconnect timers do not run then), and once a client stops reading, the
//! dispatcher stops polling the body, so nothing in the process wakes up. The kernel does:
//! `TCP_USER_TIMEOUT` closes a connection whose sent data stays unacknowledged, or whose queued
//! data cannot be sent because the peer's receive window stays shut, for longer than the
//! timeout (the zero-window case since Linux 5.11). The dispatcher's next write then fails, and
//! the response, its file and its buffer are dropped. A reader that is slow but reading keeps
//! opening its window and is never cut.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Sets the send timeout of every connection `listener` accepts (accepted sockets inherit
/// `TCP_USER_TIMEOUT` from the listening one). `Duration::ZERO` leaves the kernel's default
/// (retransmit for about 15 minutes, probe a shut window forever).
pub fn set_send_timeout(listener: &TcpListener, timeout: Duration) -> io::Result<()> {
    let ms = libc::c_uint::try_from(timeout.as_millis()).map_err(io::Error::other)?;
    // SAFETY: a plain setsockopt on a socket this function borrows, with a pointer to a local
    // of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&ms as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    fn user_timeout(s: &TcpStream) -> libc::c_uint {
        let mut ms: libc::c_uint = 0;
        let mut len = std::mem::size_of::<libc::c_uint>() as libc::socklen_t;
        // SAFETY: getsockopt into a local of the size passed.
        let rc = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT,
                (&mut ms as *mut libc::c_uint).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        ms
    }

    /// The timeout set on the listener is the one every accepted connection has.
    #[test]
    fn accepted_connections_inherit_the_send_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        set_send_timeout(&listener, Duration::from_millis(4_321)).expect("set");
        let _client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        assert_eq!(user_timeout(&accepted), 4_321);
    }
}
