//! The CLI on a stopped server's data (and then on the running server), and configuration
//! handling.

use crate::common::*;

#[tokio::test]
async fn user_commands_and_the_lock_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (ok, out, err) = cli(
        dir,
        &["user", "add", "opsuser", "--email", "ops@example.com", "--admin"],
        "opspass1\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("opsuser"));
    let (ok, _, err) = cli(
        dir,
        &["user", "add", "opsuser", "--email", "x@example.com"],
        "opspass1\n",
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = cli(dir, &["user", "add", "nopass", "--email", "n@example.com"], "");
    assert!(!ok && err.contains("standard input"), "{err}");
    let (ok, _, _) = cli(
        dir,
        &["user", "add", "dev_user", "--email", "dev@example.com", "--inactive"],
        "devpass1\n",
    );
    assert!(ok);
    let (_, out, _) = cli(dir, &["user", "list"], "");
    assert!(out.contains("opsuser\tops@example.com\tactive\tadmin"), "{out}");
    assert!(out.contains("dev_user\tdev@example.com\tinactive\tuser"), "{out}");
    assert!(cli(dir, &["user", "activate", "dev_user"], "").0);
    assert!(cli(dir, &["user", "passwd", "dev_user"], "newpass1\n").0);
    assert!(cli(dir, &["user", "admin", "dev_user"], "").0);
    assert!(cli(dir, &["user", "admin", "dev_user", "--off"], "").0);
    let (ok, _, err) = cli(dir, &["user", "activate", "ghost"], "");
    assert!(!ok && err.contains("No such user"), "{err}");

    let s = Server::start_in(dir, "");
    let c = client();
    expect(
        c.get(format!("{}/v1/users/", s.url))
            .header("Authorization", basic("dev_user", "newpass1"))
            .send()
            .await
            .unwrap(),
        200,
        "cli-made user logs in",
    )
    .await;
    // With the server running, the CLI goes through its local socket.
    let (ok, out, err) = cli(dir, &["user", "list"], "");
    assert!(ok, "{err}");
    assert!(out.contains("dev_user\tdev@example.com\tactive\tuser"), "{out}");
}

#[test]
fn invalid_config_refuses_to_start_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (extra, key) in [
        ("standalone = false\n", "index_endpoint"),
        ("[index]\nregistration = \"sometimes\"\n", "registration"),
        ("[storage]\ndriver = \"floppy\"\n", "storage.driver"),
        ("bogus_key = 1\n", "bogus_key"),
    ] {
        let err = match Server::try_start_in(tmp.path(), extra) {
            Ok(_) => panic!("started with {extra}"),
            Err(e) => e,
        };
        assert!(err.contains(key), "{extra}: {err}");
    }
}
