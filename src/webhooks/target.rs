//! Where a hook may send: its URL's form, and the addresses a repository's hook may not reach.
//!
//! A repository owner is not the operator: a hook of theirs must not make the server call
//! itself or its host's other services (`http://127.0.0.1:...`), nor a cloud metadata service
//! (`http://169.254.169.254/`). So, unless `[webhooks] allow_loopback` is on, a repository's
//! hook may not name a loopback, link-local or unspecified address, and a host name is
//! resolved by [`Guarded`], which drops such addresses at connection time (a name that
//! resolved elsewhere when the hook was made cannot be pointed at them later). The operator's
//! global hooks may send anywhere. Redirects are never followed (a redirect could lead
//! anywhere), and no proxy from the environment is used.

use std::net::{IpAddr, SocketAddr};

/// A hook URL's form: `http://host[:port]/path`. https is refused: this build has no TLS
/// client (as for `index_endpoint`); a receiver behind https takes a small relay.
pub fn check_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{raw:?}: https is not supported yet (Skiff is built without a TLS client); use http://, e.g. on a trusted LAN"
            ))
        }
        other => return Err(format!("{raw:?}: the scheme must be http, not {other:?}")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{raw:?}: no credentials in the URL (the signature authenticates Skiff)"
        ));
    }
    if raw.len() > 2048 {
        return Err("the URL is longer than 2048 characters".to_string());
    }
    Ok(url)
}

/// Whether a repository's hook may not reach `ip`: this host (loopback, unspecified) or the
/// link's neighbours and metadata services (link-local), in IPv4, IPv6 and IPv4-mapped form.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// A repository's hook URL: its form, and no forbidden address named outright.
pub fn check_repository_url(raw: &str, allow_loopback: bool) -> Result<reqwest::Url, String> {
    let url = check_url(raw)?;
    if allow_loopback {
        return Ok(url);
    }
    let refused = || {
        format!("{raw:?}: a repository's hook may not send to this host or a link-local address (the operator may allow it: [webhooks] allow_loopback)")
    };
    let host = url.host_str().unwrap_or("");
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let named_local = host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost");
    if named_local || literal.is_some_and(forbidden_ip) {
        return Err(refused());
    }
    Ok(url)
}

/// The resolver of repositories' hooks: the system's, without forbidden addresses.
pub struct Guarded;

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| !forbidden_ip(a.ip())).collect();
            if allowed.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to no address a repository's hook may reach").into();
                return Err(e);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_addresses() {
        assert!(check_url("http://ci.lan:8080/hook?x=1").is_ok());
        for bad in ["ftp://x/", "http://", "not a url", "http://u:p@x/", "https://x/"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        for bad in [
            "http://127.0.0.1:5000/",
            "http://[::1]/",
            "http://169.254.169.254/latest",
            "http://0.0.0.0/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fe80::1]/",
            "http://localhost/",
            "http://a.localhost/",
        ] {
            assert!(check_repository_url(bad, false).is_err(), "{bad}");
            assert!(check_repository_url(bad, true).is_ok(), "{bad} allowed when configured");
        }
        for good in [
            "http://10.0.0.5/",
            "http://192.168.1.2:9000/x",
            "http://ci.example.com/",
        ] {
            assert!(check_repository_url(good, false).is_ok(), "{good}");
        }
    }
}
