//! The network side of the server, below the HTTP layer: the listening socket's options, the
//! connection type actix-http runs on (which sends files itself).

pub mod conn;
pub mod server;
mod timeout;

pub use timeout::set_send_timeout;
