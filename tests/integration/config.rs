//! daemon.toml: the shipped example, validation errors with key and line, secrets.

use std::path::Path;

use usage_archiver::config::{self, ConfigError, ProviderSettings};

use crate::common::*;

fn parse(text: &str) -> Result<config::Config, ConfigError> {
    config::parse(text, Path::new("daemon.toml")).map(|p| p.config)
}

fn error(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

const MINIMAL: &str = "[[hydraproxy]]\nname = \"main\"\ntoken = \"t\"\n";

/// The shipped daemon.toml parses and documents every default.
#[test]
fn shipped_daemon_toml_parses() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("daemon.toml");
    let config = parse(&std::fs::read_to_string(path).unwrap()).unwrap();
    let labels: Vec<String> = config.accounts.iter().map(|a| a.label()).collect();
    assert_eq!(
        labels,
        [
            "hydraproxy/main",
            "infiniteproxies/main",
            "hostens/main",
            "proxyshard/main"
        ]
    );
    assert_eq!(
        config.accounts[0].base_url,
        "https://app.hydraproxy.com/api"
    );
    assert_eq!(config.http.max_retries, 5);
}

/// Defaults fill what a minimal account leaves out.
#[test]
fn minimal_account_gets_defaults() {
    let config = parse(MINIMAL).unwrap();
    let a = &config.accounts[0];
    assert_eq!(
        (a.max_concurrency, a.retention_days, a.schedule.as_str()),
        (4, 7, "0 10 * * * *")
    );
    let ProviderSettings::HydraProxy(s) = &a.settings else {
        panic!()
    };
    assert_eq!(s.reseller_base_url, "https://api.hydraproxy.com");
    assert_eq!(
        config.archive.database,
        Path::new("/var/lib/usage-archiver/archive.db")
    );
}

/// An unknown key is an error naming the key and its line.
#[test]
fn unknown_key_names_key_and_line() {
    let err = error(
        "[archive]\nkeep_raw = \"all\"\n\n[[hydraproxy]]\nname = \"m\"\ntoken = \"t\"\ntokn = \"x\"\n",
    );
    assert!(
        err.contains("tokn") && err.contains("daemon.toml:7:1:"),
        "{err}"
    );
    let err = error("[htp]\ntimeout_secs = 3\n");
    assert!(
        err.contains("htp") && err.contains("daemon.toml:1:"),
        "{err}"
    );
}

/// Bad values name the key and the line.
#[test]
fn bad_values_name_key_and_line() {
    let cases = [
        (
            "[[hydraproxy]]\nname = \"m\"\ntoken = \"t\"\nschedule = \"0 * * * *\"\n",
            "hydraproxy.schedule",
            4,
        ),
        (
            "[[hydraproxy]]\nname = \"m\"\ntoken = \"t\"\nmax_concurrency = 0\n",
            "hydraproxy.max_concurrency",
            4,
        ),
        (
            "[[hydraproxy]]\nname = \"m\"\ntoken = \"t\"\norders = [12, \"x1\"]\n",
            "hydraproxy.orders",
            4,
        ),
        (
            "[[hydraproxy]]\nname = \"has space\"\ntoken = \"t\"\n",
            "hydraproxy.name",
            2,
        ),
        ("[http]\ntimeout_secs = 0\n", "http.timeout_secs", 2),
    ];
    for (text, key, line) in cases {
        let err = parse(text).unwrap_err();
        match &err {
            ConfigError::Invalid {
                key: k, line: l, ..
            } => assert_eq!((k.as_str(), *l), (key, line), "{err}"),
            other => panic!("expected Invalid for {key}, got {other}"),
        }
    }
    let err = error("[archive]\nkeep_raw = \"some\"\n");
    assert!(err.contains("`archive.keep_raw`"), "{err}");
    assert!(err.contains("daemon.toml:2:12:"), "{err}");
}

/// http:// base URLs need allow_insecure_http on the account.
#[test]
fn https_is_enforced_unless_allowed() {
    let plain =
        "[[hydraproxy]]\nname = \"m\"\ntoken = \"t\"\nbase_url = \"http://127.0.0.1:1/api\"\n";
    let err = error(plain);
    assert!(
        err.contains("hydraproxy.base_url") && err.contains("https://") && err.contains(":4:"),
        "{err}"
    );
    let allowed = format!("{plain}allow_insecure_http = true\n");
    assert_eq!(
        parse(&allowed).unwrap().accounts[0].base_url,
        "http://127.0.0.1:1/api"
    );
}

/// Two accounts of one provider cannot share a name.
#[test]
fn duplicate_account_names_are_refused() {
    let err = error(&format!("{MINIMAL}{MINIMAL}"));
    assert!(err.contains("used twice"), "{err}");
}

/// A token can come from a file; two sources at once are refused; none at all says where to put one.
#[test]
fn token_sources() {
    let dir = TestDir::new();
    let file = dir.write("token", &format!("{TOKEN}\n"), 0o600);
    let config = parse(&format!(
        "[[hydraproxy]]\nname = \"m\"\ntoken_file = {:?}\n",
        file.display().to_string()
    ))
    .unwrap();
    let ProviderSettings::HydraProxy(s) = &config.accounts[0].settings else {
        panic!()
    };
    assert_eq!(s.token.expose(), TOKEN, "trailing newline dropped");
    assert!(
        !format!("{config:?}").contains(TOKEN),
        "Debug never shows a secret"
    );

    let err = error(&format!(
        "[[hydraproxy]]\nname = \"m\"\ntoken = \"a\"\ntoken_file = {:?}\n",
        file.display().to_string()
    ));
    assert!(err.contains("only one of"), "{err}");
    let err = error("[[hydraproxy]]\nname = \"m\"\n");
    assert!(
        err.contains("hydraproxy-m") && err.contains("token_file"),
        "{err}"
    );
    let err = error("[[hydraproxy]]\nname = \"m\"\ntoken_file = \"/nonexistent/token\"\n");
    assert!(err.contains("/nonexistent/token"), "{err}");
}

/// A world-readable config holding a secret gets a warning; 0640 does not.
#[test]
fn world_readable_secret_file_warns() {
    let dir = TestDir::new();
    let open_file = dir.write("open.toml", MINIMAL, 0o644);
    let warnings = config::load(&open_file).unwrap().warnings;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("readable by every user")),
        "{warnings:?}"
    );
    let closed = dir.write("closed.toml", MINIMAL, 0o640);
    assert!(config::load(&closed).unwrap().warnings.is_empty());
    let no_secret = dir.write("nosecret.toml", "[archive]\nkeep_raw = \"all\"\n", 0o644);
    assert!(config::load(&no_secret).unwrap().warnings.is_empty());
}

/// A missing file names the file.
#[test]
fn missing_file_is_named() {
    let err = config::load(Path::new("/nonexistent/daemon.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/daemon.toml"), "{err}");
}

/// [[infiniteproxies]]: defaults, a configurable auth header, and errors naming its keys.
#[test]
fn infiniteproxies_section() {
    let config =
        parse("[[infiniteproxies]]\nname = \"main\"\napi_key = \"k\"\ncustomers = [\"Alice\"]\n")
            .unwrap();
    let a = &config.accounts[0];
    assert_eq!(a.base_url, "https://reseller.infiniteproxies.com/v2");
    assert_eq!(
        (a.retention_days, a.schedule.as_str()),
        (14, "0 20 0,6,12,18 * * *")
    );
    let ProviderSettings::InfiniteProxies(s) = &a.settings else {
        panic!()
    };
    assert_eq!(s.auth_header.as_str(), "authorization");
    assert_eq!(s.auth_value.to_str().unwrap(), "Bearer k");
    assert!(
        !format!("{config:?}").contains("Bearer k"),
        "the header value is marked sensitive"
    );
    assert_eq!(s.customers, ["alice"]);

    let err =
        error("[[infiniteproxies]]\nname = \"m\"\napi_key = \"k\"\nauth_header = \"Bad Header\"\n");
    assert!(
        err.contains("infiniteproxies.auth_header") && err.contains(":4:"),
        "{err}"
    );
    let err = error("[[infiniteproxies]]\nname = \"m\"\n");
    assert!(
        err.contains("infiniteproxies-m") && err.contains("api_key_file"),
        "{err}"
    );
    let err = error("[[infiniteproxies]]\nname = \"m\"\napi_key = \"k\"\norders = [1]\n");
    assert!(
        err.contains("orders"),
        "HydraProxy keys are unknown here: {err}"
    );
}
