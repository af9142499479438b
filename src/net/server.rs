//! The HTTP server: actix-web's application on actix-http's HTTP/1.1 dispatcher, over
//! [`Conn`] rather than a bare TCP stream (what actix-web's `HttpServer` would do), so files
//! are sent with `sendfile` and unparseable requests get JSON errors. Timeouts and the
//! connection limit are actix-web's defaults.

use super::conn::{Conn, HandoffSlot};
use actix_http::HttpService;
use actix_service::{fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, Extensions};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// The address a connection came in on, in its request extensions (`HttpRequest::conn_data`).
#[derive(Clone, Copy, Debug)]
pub struct LocalAddr(pub SocketAddr);

/// Serves `app` (a factory of actix-web `App`s, one per worker) on `listener` until a signal.
pub fn start<F, I, T, B>(listener: TcpListener, app: F) -> io::Result<actix_server::Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<T, actix_http::Request>,
    T: actix_service::ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    T::Future: 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    Ok(actix_server::Server::build()
        .listen("skiff", listener, move || {
            let app = app.clone();
            let http = HttpService::build()
                .keep_alive(actix_http::KeepAlive::Timeout(Duration::from_secs(5)))
                .client_request_timeout(Duration::from_secs(5))
                .client_disconnect_timeout(Duration::from_secs(1))
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
                Ok::<_, actix_http::error::DispatchError>((Conn::new(stream), peer))
            })
            .and_then(http)
        })?
        .run())
}
