//! The HTTP server: actix-web's application on actix-http's HTTP/1.1 dispatcher, over
//! [`Conn`] rather than a bare TCP stream (what actix-web's `HttpServer` would do), so files
//! are sent by the connection itself and unparseable requests get JSON errors. Timeouts and the
//! connection limit are actix-web's defaults.
//!
//! The same application also answers on the local socket (`skiff.sock` in `data_dir`), where
//! the caller is the operator: only the account running the server (or root) may connect,
//! checked by the kernel's peer credentials on every connection, and the socket file is
//! readable by its owner only.

use super::conn::{Conn, HandoffSlot};
use actix_http::error::DispatchError;
use actix_http::HttpService;
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Extensions, ServiceResponse};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::time::Duration;

/// The address a connection came in on, in its request extensions (`HttpRequest::conn_data`).
#[derive(Clone, Copy, Debug)]
pub struct LocalAddr(pub SocketAddr);

/// Marks a connection on the local socket: the operator, on the server's own host.
#[derive(Clone, Copy, Debug)]
pub struct LocalOperator;

/// actix-web's defaults: 5 s keep-alive, 5 s for a request head, 1 s to close.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
const REQUEST_HEAD: Duration = Duration::from_secs(5);
const DISCONNECT: Duration = Duration::from_secs(1);

/// Serves `app` (a factory of actix-web `App`s, one per worker) on `listener`, and on `local`
/// as the operator, until a signal.
pub fn start<F, I, T, B>(
    listener: Option<TcpListener>,
    local: Option<UnixListener>,
    app: F,
) -> io::Result<actix_server::Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<T, actix_http::Request>,
    T: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    T::Future: 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let mut server = actix_server::Server::build();
    if let Some(listener) = listener {
        server = listen_tcp(server, listener, app.clone())?;
    }
    if let Some(local) = local {
        server = listen_local(server, local, app)?;
    }
    Ok(server.run())
}

fn listen_tcp<F, I, T, B>(
    server: actix_server::ServerBuilder,
    listener: TcpListener,
    app: F,
) -> io::Result<actix_server::ServerBuilder>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<T, actix_http::Request>,
    T: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    T::Future: 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    server.listen("skiff", listener, move || {
        let service = HttpService::<Conn, _, _, _, _>::build()
            .keep_alive(KEEP_ALIVE)
            .client_request_timeout(REQUEST_HEAD)
            .client_disconnect_timeout(DISCONNECT)
            .local_addr(addr)
            .on_connect_ext(move |conn: &Conn, ext: &mut Extensions| {
                ext.insert::<HandoffSlot>(conn.slot());
                ext.insert(LocalAddr(addr));
            })
            .h1(map_config(app().into_factory(), |_| AppConfig::default()));
        fn_service(|stream: actix_rt::net::TcpStream| async move {
            let peer = stream.peer_addr().ok();
            // As actix-web's server does: small responses go out at once.
            let _ = stream.set_nodelay(true);
            Ok::<_, DispatchError>((Conn::new(stream), peer))
        })
        .and_then(service)
    })
}

fn listen_local<F, I, T, B>(
    server: actix_server::ServerBuilder,
    local: UnixListener,
    app: F,
) -> io::Result<actix_server::ServerBuilder>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<T, actix_http::Request>,
    T: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    T::Future: 'static,
    B: actix_web::body::MessageBody + 'static,
{
    server.listen_uds("skiff-local", local, move || {
        let service = HttpService::<actix_rt::net::UnixStream, _, _, _, _>::build()
            .keep_alive(KEEP_ALIVE)
            .client_request_timeout(REQUEST_HEAD)
            .client_disconnect_timeout(DISCONNECT)
            .on_connect_ext(|_: &actix_rt::net::UnixStream, ext: &mut Extensions| {
                ext.insert(LocalOperator);
                ext.insert(LocalAddr(SocketAddr::from(([127, 0, 0, 1], 0))));
            })
            .h1(map_config(app().into_factory(), |_| AppConfig::default()));
        fn_service(|stream: actix_rt::net::UnixStream| async move {
            if !is_operator(&stream) {
                return Err(DispatchError::Io(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "local socket: connection from another account refused",
                )));
            }
            Ok((stream, None))
        })
        .and_then(service)
    })
}

/// Whether the peer runs as this process's account, or as root.
fn is_operator(stream: &actix_rt::net::UnixStream) -> bool {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    stream.peer_cred().is_ok_and(|c| c.uid() == me || c.uid() == 0)
}
