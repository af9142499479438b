//! `registry.toml` with `SKIFF_*` variables.

use super::*;

// ---- config ----

/// Every config key, with its default (which gives its type).
static CONFIG_KEYS: LazyLock<Vec<(String, toml::Value)>> = LazyLock::new(crate::config::known_keys);

/// A value for a config key: of the right type or not, plausible or not.
fn config_value() -> impl Strategy<Value = toml::Value> {
    let strings = || {
        proptest::sample::select(
            &[
                "0.0.0.0:5000",
                "127.0.0.1:0",
                "[::1]:80",
                "nope",
                ":5000",
                "http://index.lan:5000",
                "https://index.lan",
                "http://[::1]:80",
                "http://a\"b",
                "fs",
                "s3",
                "open",
                "closed",
                "activation",
                "",
                "pnkT-Q4N6dWU8n3oQW7Za3x5S1nLJv6E3f-xd6Py1Ds",
                "reg.lan:5000",
            ][..],
        )
    };
    prop_oneof![
        3 => strings().prop_map(|s| toml::Value::String(s.into())),
        1 => text().prop_map(toml::Value::String),
        2 => prop_oneof![Just(0i64), Just(1), Just(10_000), Just(600_000), Just(-1), Just(i64::MAX), any::<i64>()]
            .prop_map(toml::Value::Integer),
        1 => any::<bool>().prop_map(toml::Value::Boolean),
        1 => proptest::collection::vec(strings().prop_map(|s| toml::Value::String(s.into())), 0..3)
            .prop_map(toml::Value::Array),
        1 => Just(toml::Value::Float(1.5)),
    ]
}

/// A plausible value for `key` (whose default is `default`): of its type, mostly valid.
fn typed_value(key: &str, default: &toml::Value) -> BoxedStrategy<toml::Value> {
    let strings = |v: &'static [&'static str]| {
        proptest::sample::select(v)
            .prop_map(|s| toml::Value::String(s.into()))
            .boxed()
    };
    match (key, default) {
        (_, toml::Value::Boolean(_)) => any::<bool>().prop_map(toml::Value::Boolean).boxed(),
        (_, toml::Value::Integer(_)) => prop_oneof![4 => 10_000i64..1_000_000, 1 => any::<i64>()]
            .prop_map(toml::Value::Integer)
            .boxed(),
        (_, toml::Value::Array(_)) => {
            proptest::collection::vec(strings(&["reg.lan:5000", "a:1", "b", "x y", "a/b"]), 0..3)
                .prop_map(toml::Value::Array)
                .boxed()
        }
        ("listen", _) => strings(&["0.0.0.0:5000", "127.0.0.1:0", "[::1]:80", "localhost:1", ":80"]),
        ("public_url", _) => strings(&["", "https://reg.lan", "http://[::1]:80/", "reg.lan", "http://a\"b"]),
        ("index_endpoint", _) => strings(&["", "http://index.lan:5000", "https://index.lan"]),
        ("storage.driver", _) => strings(&["fs", "fs", "s3"]),
        ("index.registration", _) => strings(&["open", "closed", "activation", "Open"]),
        ("v2.jwt_public_key", _) => strings(&["", "pnkT-Q4N6dWU8n3oQW7Za3x5S1nLJv6E3f-xd6Py1Ds", "short"]),
        _ => text().prop_map(toml::Value::String).boxed(),
    }
}

/// A `registry.toml`: known keys (and a few unknown ones) with values of any kind.
fn config_text() -> impl Strategy<Value = String> {
    // Mostly a value of the key's type, sometimes any value, sometimes an unknown key.
    let typed = proptest::sample::select(CONFIG_KEYS.clone()).prop_flat_map(|(key, default)| {
        let value = typed_value(&key, &default);
        (Just(key), value)
    });
    let pair = prop_oneof![
        6 => typed,
        2 => (proptest::sample::select(CONFIG_KEYS.clone()).prop_map(|(k, _)| k), config_value()),
        1 => (
            proptest::sample::select(&["nope", "index.nope", "index", "v2.enabled.x"][..]).prop_map(str::to_string),
            config_value(),
        ),
    ];
    proptest::collection::vec(pair, 0..8).prop_map(|pairs| {
        let mut table = toml::Table::new();
        for (path, value) in pairs {
            // Keys are at most two deep (`index.token_ttl_secs`).
            match path.split_once('.') {
                None => {
                    table.insert(path, value);
                }
                Some((section, key)) => {
                    let entry = table
                        .entry(section.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let toml::Value::Table(t) = entry {
                        t.insert(key.to_string(), value);
                    }
                }
            }
        }
        toml::to_string(&table).unwrap_or_default()
    })
}

/// `SKIFF_*` variables for known keys (and others), with any value.
fn config_env() -> impl Strategy<Value = Vec<(String, String)>> {
    let env_name = |k: &str| format!("SKIFF_{}", k.replace('.', "_").to_uppercase());
    // As an operator would set them: the value of the key's type, written as text.
    let typed = proptest::sample::select(CONFIG_KEYS.clone()).prop_flat_map(move |(key, default)| {
        let value = typed_value(&key, &default).prop_map(|v| match v {
            toml::Value::String(s) => s,
            toml::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        });
        (Just(env_name(&key)), value)
    });
    let odd_value = prop_oneof![
        3 => proptest::sample::select(&[
            "true", "no", "1", "2", "-5", "600000", "0.0.0.0:1", "http://i:1", "a:1, b:2", " 42 ", "",
            "9999999999999999999999",
        ][..])
        .prop_map(str::to_string),
        1 => text(),
    ];
    let odd = (
        prop_oneof![
            3 => proptest::sample::select(CONFIG_KEYS.clone()).prop_map(move |(k, _)| env_name(&k)),
            1 => proptest::sample::select(&["SKIFF_LOG", "SKIFF_CONFIG", "SKIFF_NOPE", "HOME", "SKIFF_"][..])
                .prop_map(str::to_string),
        ],
        odd_value,
    );
    proptest::collection::vec(prop_oneof![3 => typed, 1 => odd], 0..4)
}

proptest! {
    #![proptest_config(config())]

    /// The config file and `SKIFF_*` variables: never a panic, whatever the text or values; a
    /// config that loads is valid and survives a write and a reload unchanged.
    #[test]
    fn fuzz_config(text in prop_oneof![3 => config_text(), 1 => text()], env in config_env()) {
        use crate::config::Config;
        let origin = std::path::Path::new("registry.toml");
        if let Ok(c) = Config::from_text(&text, origin, &env) {
            prop_assert!(c.validate().is_ok());
            prop_assert_eq!(c.listen.parse::<std::net::SocketAddr>().ok(), Some(c.listen_addr()));
            let written = c.to_toml();
            let again = Config::from_text(&written, origin, &[])
                .map_err(|e| TestCaseError::fail(format!("{e}: {written}")))?;
            prop_assert_eq!(again.to_toml(), written);
        }
    }
}
