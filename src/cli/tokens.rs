//! `skiff token create|list|rm`: access tokens and robots, through the management API. The
//! operator on the socket is an admin but no account, so `create` names the owner.

use super::{age, local, print_table};
use clap::Subcommand;
use serde_json::{json, Value};
use skiff::config::Config;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create an access token; prints its secret (once: it is never shown again) on standard
    /// output, and how to sign in with it on standard error.
    Create {
        /// The token's name (a robot's name: it signs in as robot$<namespace>+<name>).
        name: String,
        /// The account it acts for, whose rights bound it.
        #[arg(long)]
        owner: String,
        /// REPOSITORY:ACTIONS, e.g. alice/app:pull or 'alice/*:pull,push' (repeatable).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Make a robot account of this namespace (owned by an admin or the namespace's account).
        #[arg(long)]
        robot: Option<String>,
        /// Lifetime: a number with s, m, h or d (90d); default: until revoked.
        #[arg(long)]
        expires_in: Option<String>,
        /// Print the whole answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id: it, and every token issued on it, stops working at once.
    Rm { id: String },
}

pub fn run(config: &Config, cmd: TokenCommand) -> Result<(), String> {
    let api = local::Api::connect(config)?;
    match cmd {
        TokenCommand::Create {
            name,
            owner,
            scopes,
            robot,
            expires_in,
            json,
        } => {
            let scopes = scopes.iter().map(|s| scope(s)).collect::<Result<Vec<_>, _>>()?;
            let expires_in = expires_in.as_deref().map(seconds).transpose()?;
            let body =
                json!({"name": name, "owner": owner, "robot": robot, "scopes": scopes, "expires_in": expires_in});
            let made = api.call("POST", "/api/v1/tokens", Some(body))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&made).map_err(|e| e.to_string())?);
            } else {
                println!("{}", made["secret"].as_str().unwrap_or_default());
                eprintln!(
                    "token {} created; its secret (above) is shown only now. Sign in with: docker login -u '{}' --password-stdin <registry>",
                    made["id"].as_str().unwrap_or_default(),
                    made["login"].as_str().unwrap_or_default()
                );
            }
        }
        TokenCommand::List { json } => {
            let list = api.call("GET", "/api/v1/tokens", None)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?);
            } else {
                print_tokens(list.as_array().map(Vec::as_slice).unwrap_or_default());
            }
        }
        TokenCommand::Rm { id } => {
            api.call("DELETE", &format!("/api/v1/tokens/{id}"), None)?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}

/// `alice/app:pull,push` -> `{"repository": "alice/app", "actions": ["pull", "push"]}`.
fn scope(arg: &str) -> Result<Value, String> {
    let (repo, actions) = arg
        .rsplit_once(':')
        .ok_or_else(|| format!("--scope {arg:?}: write REPOSITORY:ACTIONS, e.g. alice/app:pull"))?;
    let actions: Vec<&str> = actions.split(',').map(str::trim).collect();
    Ok(json!({"repository": repo, "actions": actions}))
}

/// `90d`, `12h`, `30m`, `45s` or a plain number of seconds.
fn seconds(arg: &str) -> Result<u64, String> {
    let bad = || format!("--expires-in {arg:?}: a number with s, m, h or d, e.g. 90d");
    let (number, unit) = match arg.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&arg[..i], c),
        _ => (arg, 's'),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(per).filter(|s| *s > 0).ok_or_else(bad)
}

fn print_tokens(tokens: &[Value]) {
    let rows = tokens
        .iter()
        .map(|t| {
            let scopes: Vec<String> = t["scopes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let actions: Vec<&str> = s["actions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    format!("{}:{}", s["repository"].as_str().unwrap_or_default(), actions.join(","))
                })
                .collect();
            let expires = match t["expires"].as_u64() {
                None => "never".to_string(),
                Some(_) if t["expired"] == true => "expired".to_string(),
                Some(at) => until(at),
            };
            vec![
                t["id"].as_str().unwrap_or_default().to_string(),
                t["login"].as_str().unwrap_or_default().to_string(),
                t["name"].as_str().unwrap_or_default().to_string(),
                scopes.join(" "),
                expires,
                t["last_used"].as_u64().map_or("never".to_string(), age),
            ]
        })
        .collect();
    print_table(&["ID", "LOGIN", "NAME", "SCOPES", "EXPIRES", "LAST USED"], rows);
}

/// How long until a time (seconds since the epoch), roughly.
fn until(then: u64) -> String {
    let secs = then.saturating_sub(skiff::clock::now_secs());
    match secs {
        0..3600 => format!("in {} min", secs / 60),
        3600..86_400 => format!("in {} h", secs / 3600),
        _ => format!("in {} days", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_lifetimes_read_as_written() {
        assert_eq!(
            scope("alice/*:pull,push").unwrap(),
            json!({"repository": "alice/*", "actions": ["pull", "push"]})
        );
        assert!(scope("alice/app").is_err());
        assert_eq!(seconds("90d"), Ok(90 * 86_400));
        assert_eq!(seconds("12h"), Ok(12 * 3600));
        assert_eq!(seconds("45"), Ok(45));
        for bad in ["", "d", "0s", "5y", "-1d", "99999999999999999d"] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }
}
