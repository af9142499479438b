//! The CLI's way to the management API: HTTP/1.1 over the local socket of the running server,
//! or, when none runs, of a server started in this process on the stopped server's data for
//! the length of one command. Either way the command goes through the same API, rules and
//! log lines.

use skiff::config::Config;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

pub struct Api {
    socket: PathBuf,
    /// The in-process server, when no server was running; stopped on drop.
    offline: Option<Offline>,
}

struct Offline {
    handle: actix_server::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Api {
    /// The running server's socket if one answers there, else a server of our own.
    pub fn connect(config: &Config) -> Result<Api, String> {
        let live = config.local_socket_path();
        if UnixStream::connect(&live).is_ok() {
            return Ok(Api {
                socket: live,
                offline: None,
            });
        }
        let socket = config.data_dir.join(format!("skiff-cli-{}.sock", std::process::id()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (config, path) = (config.clone(), socket.clone());
        let thread = std::thread::spawn(move || {
            let at = path.clone();
            actix_rt::System::new().block_on(async move {
                match skiff::run_offline(config, &at).await {
                    Ok(server) => {
                        let _ = tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
            let _ = std::fs::remove_file(&path);
        });
        let handle = rx.recv().map_err(|_| "the local server did not start".to_string())??;
        Ok(Api {
            socket,
            offline: Some(Offline {
                handle,
                thread: Some(thread),
            }),
        })
    }

    /// One request; the JSON answer of a 2xx (`null` for 204), or the API's error message.
    pub fn call(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Result<serde_json::Value, String> {
        let mut sock = UnixStream::connect(&self.socket)
            .map_err(|e| format!("cannot reach the server at {}: {e}", self.socket.display()))?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        sock.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        sock.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("the server's answer was cut short")?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("the server's answer has no status")?;
        let content = &raw[split + 4..];
        let value: serde_json::Value = if content.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(content).map_err(|e| format!("the server's answer is not JSON: {e}"))?
        };
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(value["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}")))
        }
    }
}

impl Api {
    /// A `GET` whose 2xx body is read as it arrives: the body, exactly its Content-Length
    /// long. Errors as for `call`.
    pub fn stream(&self, path: &str) -> Result<impl BufRead, String> {
        let mut sock = UnixStream::connect(&self.socket)
            .map_err(|e| format!("cannot reach the server at {}: {e}", self.socket.display()))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        sock.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut reader = BufReader::with_capacity(1 << 20, sock);
        let mut status = None;
        let mut length = None;
        loop {
            let mut line = String::new();
            let n = (&mut reader)
                .take(64 << 10)
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            let line = line.trim_end();
            if n == 0 || line.is_empty() {
                break;
            }
            if status.is_none() {
                status = line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
            } else if let Some((name, value)) = line.split_once(':') {
                if name.trim().eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<u64>().ok();
                }
            }
        }
        let status = status.ok_or("the server's answer has no status")?;
        if !(200..300).contains(&status) {
            let mut rest = Vec::new();
            let _ = reader.take(1 << 20).read_to_end(&mut rest);
            let value: serde_json::Value = serde_json::from_slice(&rest).unwrap_or_default();
            return Err(value["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}")));
        }
        let length = length.ok_or("the server's answer has no Content-Length")?;
        Ok(reader.take(length))
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(mut offline) = self.offline.take() {
            futures::executor::block_on(offline.handle.stop(true));
            if let Some(t) = offline.thread.take() {
                let _ = t.join();
            }
        }
    }
}
