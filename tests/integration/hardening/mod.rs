//! Field hardening (issue 15): what an attacker or an unlucky operator found by trying
//! the release binary. Each test names the point it guards.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

use httpmock::MockServer;

use crate::common::*;

mod runs;

/// A ProxyShard account on `server` with one proxy type.
fn proxyshard_config(server: &MockServer, dir: &TestDir) -> usage_archiver::config::Config {
    let text = format!(
        "[archive]\ndatabase = {:?}\n\n[http]\nmax_retries = 0\n\n[[proxyshard]]\nname = \"main\"\n\
         base_url = \"{}\"\nallow_insecure_http = true\ntoken = \"{TOKEN}\"\nproxy_types = [\"standart\"]\n",
        dir.db().display().to_string(),
        server.base_url()
    );
    usage_archiver::config::parse(&text, std::path::Path::new("t.toml"))
        .unwrap()
        .config
}

/// Sub-user ids that a URL would drop or climb with (`.`, `..`), or that would take the
/// owner's subject (`owner`), are refused, and an archived subject holding one is never
/// requested.
// See: issue 15.11
#[tokio::test]
async fn proxyshard_user_ids_that_are_path_tricks_are_refused() {
    for id in [".", "..", "owner", "a%2F..", "a\\\\b"] {
        let body = serde_json::json!({"success": true, "count": 1,
            "data": [{"user_id": id, "data": 1, "data_spent": 1, "data_remain": 0}]});
        let resp = usage_archiver::http::Response {
            status: reqwest::StatusCode::OK,
            body: body.to_string().into(),
        };
        let err = usage_archiver::providers::proxyshard::parse_sub_users(&resp).unwrap_err();
        assert!(
            err.to_string().contains("is not a usable user id"),
            "{id}: {err}"
        );
    }
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|_, then| {
            then.status(200).body(r#"{"success":true,"data":[]}"#);
        })
        .await;
    let dir = TestDir::new();
    let config = proxyshard_config(&server, &dir);
    let http = usage_archiver::http::HttpClient::new(&config.http).unwrap();
    let vault = std::sync::Arc::new(usage_archiver::providers::NoVault);
    let provider = usage_archiver::providers::build(&config.accounts[0], &http, vault);
    for subject in ["standart/..", "standart/.", "order/.."] {
        let err = provider.fetch_usage(subject).await.unwrap_err();
        assert!(
            err.to_string().contains("cannot be a path segment"),
            "{err}"
        );
    }
    any.assert_calls_async(0).await;
}

/// `WATCHDOG_USEC=0` means no watchdog: the daemon starts, runs and stops cleanly, and
/// nothing panics.
// See: issue 15.11
#[test]
fn watchdog_usec_zero_does_not_panic() {
    let dir = TestDir::new();
    let text = "[archive]\ndatabase = \"a.db\"\n\n[http]\nmax_retries = 0\n\n[[hydraproxy]]\nname = \"main\"\n\
                base_url = \"http://127.0.0.1:9/api\"\nreseller_base_url = \"http://127.0.0.1:9\"\n\
                allow_insecure_http = true\ntoken = \"t\"\nschedule = \"0 0 0 1 1 *\"\n";
    let cfg = dir.write("daemon.toml", text, 0o600);
    let socket = UnixDatagram::bind(dir.path("notify.sock")).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let log = dir.path("stderr.log");
    let mut child = Command::new(BIN)
        .args(["run", "--config", cfg.to_str().unwrap()])
        .env("NOTIFY_SOCKET", dir.path("notify.sock"))
        .env("WATCHDOG_USEC", "0")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    wait_for(&socket, &mut child, "READY=1", &mut seen);
    // The catch-up run against a closed port ends (connection refused) and is reported.
    wait_for(&socket, &mut child, "hydraproxy/main: run", &mut seen);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The config warns about credentials sent over plain http to another machine, and about
/// secret files others can read or anyone but the owner can write.
// See: issue 15.11 and 15.7
#[test]
fn config_warns_about_insecure_hosts_and_loose_secret_files() {
    let dir = TestDir::new();
    let token = dir.write("token", "tok-secret\n", 0o644);
    let text = format!(
        "[archive]\ndatabase = \"a.db\"\n\n[[hydraproxy]]\nname = \"main\"\n\
         base_url = \"http://10.0.0.7/api\"\nreseller_base_url = \"http://localhost:8080\"\n\
         allow_insecure_http = true\ntoken_file = {:?}\n",
        token.display().to_string()
    );
    let cfg = dir.write("daemon.toml", &text, 0o664);
    let config = usage_archiver::config::load(&cfg).unwrap();
    let warnings = config.warnings.join("\n");
    assert!(
        warnings.contains("`hydraproxy.base_url` sends credentials over plain http to 10.0.0.7"),
        "{warnings}"
    );
    assert!(
        !warnings.contains("localhost"),
        "loopback is fine: {warnings}"
    );
    assert!(
        warnings.contains("`hydraproxy.token_file`:")
            && warnings.contains("readable by every user"),
        "{warnings}"
    );
    assert!(
        warnings.contains("daemon.toml is writable by its group or others"),
        "{warnings}"
    );
    assert!(!warnings.contains("tok-secret"));
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o640)).unwrap();
    let quiet = usage_archiver::config::load(&cfg).unwrap();
    assert_eq!(quiet.warnings.len(), 1, "{:?}", quiet.warnings);
}

/// Relative paths in the config (`database`, `metrics_textfile`, `*_file`) are taken
/// from the config file's directory, not from the working directory (`/` under systemd).
// See: issue 15.11
#[test]
fn relative_paths_are_taken_from_the_config_directory() {
    let dir = TestDir::new();
    std::fs::create_dir(dir.path("etc")).unwrap();
    dir.write("etc/hydra.token", "tok-from-file\n", 0o600);
    let text = "[archive]\ndatabase = \"state/archive.db\"\nmetrics_textfile = \"m.prom\"\n\n\
                [[hydraproxy]]\nname = \"main\"\ntoken_file = \"hydra.token\"\n";
    let cfg = dir.write("etc/daemon.toml", text, 0o600);
    let config = usage_archiver::config::load(&cfg).unwrap();
    assert_eq!(config.archive.database, dir.path("etc/state/archive.db"));
    assert_eq!(
        config.archive.metrics_textfile,
        Some(dir.path("etc/m.prom"))
    );
    // check-config from another working directory finds the token file.
    let out = Command::new(BIN)
        .args(["check-config", "--config", cfg.to_str().unwrap()])
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("etc/state/archive.db"), "{stdout}");
}

fn ok_response(body: &str) -> usage_archiver::http::Response {
    usage_archiver::http::Response {
        status: reqwest::StatusCode::OK,
        body: body.to_owned().into(),
    }
}

/// HostBill's `"error": []` on a successful answer is no error (an error list with
/// something in it still is), and InfiniteProxies' `status.code` 401/403 is rejected
/// credentials even under HTTP 200.
// See: issue 15.9
#[tokio::test]
async fn answers_the_documents_allow() {
    let server = MockServer::start_async().await;
    let balance = r#"{"success":true,"error":[],"details":{"currency":"EUR","acc_balance":"1.50","acc_credit":"0"}}"#;
    server
        .mock_async(|when, then| {
            when.path("/ok/balance");
            then.status(200).body(balance);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/bad/balance");
            then.status(200)
                .body(r#"{"error":["session expired"],"details":{}}"#);
        })
        .await;
    server
        .mock_async(|when, then| {
            when.path("/ip/@me");
            then.status(200)
                .body(r#"{"status":{"code":401,"message":"API Key is invalid"}}"#);
        })
        .await;
    let dir = TestDir::new();
    let text = format!(
        "[http]\nmax_retries = 0\n\n\
         [[hostens]]\nname = \"ok\"\nbase_url = \"{0}/ok\"\nallow_insecure_http = true\nusername = \"a@b.c\"\npassword = \"p\"\n\n\
         [[hostens]]\nname = \"bad\"\nbase_url = \"{0}/bad\"\nallow_insecure_http = true\nusername = \"a@b.c\"\npassword = \"p\"\n\n\
         [[infiniteproxies]]\nname = \"ip\"\nbase_url = \"{0}/ip\"\nallow_insecure_http = true\napi_key = \"k\"\n",
        server.base_url()
    );
    let config = usage_archiver::config::parse(&text, &dir.path("t.toml"))
        .unwrap()
        .config;
    let http = usage_archiver::http::HttpClient::new(&config.http).unwrap();
    let provider = |label: &str| {
        let account = config.accounts.iter().find(|a| a.label() == label).unwrap();
        let vault = std::sync::Arc::new(usage_archiver::providers::NoVault);
        usage_archiver::providers::build(account, &http, vault)
    };
    let (balances, _) = provider("hostens/ok").fetch_balance().await.unwrap();
    assert_eq!(balances[0].value, 1.5);
    let err = provider("hostens/bad").fetch_balance().await.unwrap_err();
    assert!(err.to_string().contains("session expired"), "{err}");
    let err = provider("infiniteproxies/ip")
        .fetch_balance()
        .await
        .unwrap_err();
    assert!(err.is_rejected(), "{err}");
    assert!(err.to_string().contains("API Key is invalid"), "{err}");
}

/// Readings beyond plausibility are malformed answers that name the field: a counter
/// above 2^63 bytes, a figure that would round to infinity, a day before 2000.
// See: issue 15.9
#[test]
fn implausible_readings_are_malformed() {
    use usage_archiver::providers::{hostens, hydraproxy, proxyshard};
    let profile = |spent: &str| {
        proxyshard::parse_profile(
            "standart/owner",
            &ok_response(&format!(r#"{{"data_spent":{spent}}}"#)),
        )
    };
    assert!(
        profile("9223372036854775807").is_ok(),
        "2^63 - 1 bytes is believed"
    );
    for spent in ["9.3e18", "\"1e400\""] {
        let err = profile(spent).unwrap_err().to_string();
        assert!(err.contains("data_spent"), "{spent}: {err}");
    }
    let details = |bw_in: &str| {
        hostens::parse_details(
            format!(r#"{{"bw_in":{bw_in},"bw_out":1}}"#).as_bytes(),
            1024.0,
        )
    };
    assert!(details("1e9").is_ok());
    // A figure under f64::MAX that the GB-to-MB conversion would take to infinity.
    let err = details("1.7e308").unwrap_err();
    assert!(err.contains("bw_in"), "{err}");
    let usage = |day: &str, total: &str| {
        let body = format!(
            r#"{{"status":"OK","order_id":5,"usage":[{{"date":"{day}","bandwidth_upload_mb":0,"bandwidth_download_mb":0,"bandwidth_total_mb":{total}}}]}}"#
        );
        hydraproxy::parse_usage_history(5, &ok_response(&body))
    };
    assert!(usage("2026-03-01", "1").is_ok());
    let err = usage("1999-12-31", "1").unwrap_err().to_string();
    assert!(
        err.contains("usage[0].date") && err.contains("before 2000"),
        "{err}"
    );
    let err = usage("2026-03-01", "\"1e309\"").unwrap_err().to_string();
    assert!(err.contains("bandwidth_total_mb"), "{err}");
}

/// A 4 MiB string in a numeric field is quoted by at most 64 characters: the log line,
/// `sync_runs.error` and the `sync_error` row stay under 1 KiB (and so every later run's),
/// while the whole body is still kept raw.
// See: issue 15.5
#[tokio::test]
async fn a_huge_value_makes_a_bounded_error() {
    let (server, dir) = hydra_server().await;
    let huge = "9".repeat(64) + &"A".repeat(4 << 20);
    let body = format!(
        r#"{{"status":"OK","order_id":1,"usage":[{{"date":"2026-03-01","bandwidth_upload_mb":"{huge}","bandwidth_download_mb":0,"bandwidth_total_mb":0}}]}}"#
    );
    mock_usage(&server, body.clone()).await;
    let text = hydra_toml(&server.base_url(), &dir.db(), "orders = [1]", "");
    let cfg = dir.write("daemon.toml", &text, 0o600);
    let out = Command::new(BIN)
        .args(["backfill", "--quiet", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    for (name, stream) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(stream);
        let longest = text.lines().map(str::len).max().unwrap_or(0);
        assert!(longest < 2048, "{name} has a line of {longest} bytes");
        assert!(
            text.contains("bandwidth_upload_mb") || name == "stdout",
            "{name} names the field: {text}"
        );
    }
    for sql in [
        "SELECT max(length(error)) FROM sync_runs",
        "SELECT max(length(error)) FROM sync_error",
        "SELECT max(length(error)) FROM raw_response",
    ] {
        let longest = count(&dir.db(), sql);
        assert!((100..=1024).contains(&longest), "{sql}: {longest}");
    }
    let error: String = open(&dir.db())
        .query_row("SELECT error FROM sync_error", [], |r| r.get(0))
        .unwrap();
    assert!(
        error.len() < 400 && error.contains(&format!("\"{}\"… (", "9".repeat(64))),
        "the value is quoted by its first 64 characters: {error}"
    );
    assert_eq!(
        count(&dir.db(), "SELECT length(body) FROM raw_response"),
        body.len() as i64,
        "the raw body is kept whole"
    );
}

/// A config error never quotes a secret: for every secret key of every account table, a
/// value left unterminated or of the wrong type is reported by key, line and column,
/// through the library and through `check-config` alike.
// See: issue 15.4
#[test]
fn config_errors_never_quote_a_secret() {
    let dir = TestDir::new();
    let keys = usage_archiver::config::secret_keys();
    assert_eq!(
        keys.len(),
        5,
        "token, api_key, password, refresh_token, token"
    );
    for (kind, key) in keys {
        let secret = "Sx9-zq-SECRET-VALUE";
        for value in [
            format!("\"{secret}"),
            format!("'{secret}"),
            format!("\"\"\"{secret}\n"),
            "738291047163".to_owned(),
            format!("[\"{secret}\"]"),
            format!("{{ v = \"{secret}\" }}"),
            format!("\"{secret}\" x"),
        ] {
            let text = format!(
                "[archive]\ndatabase = \"a.db\"\n\n[[{}]]\nname = \"main\"\n{key} = {value}\n",
                kind.as_str()
            );
            let shown = usage_archiver::config::parse(&text, std::path::Path::new("d.toml"))
                .unwrap_err()
                .to_string();
            let what = format!("{}.{key} = {value}", kind.as_str());
            assert!(
                !shown.contains(secret) && !shown.contains("738291047163"),
                "{what}: {shown}"
            );
            // The line and column where the parser stopped (an unterminated multi-line
            // string runs to the end of the file).
            let place: Vec<&str> = shown.splitn(4, ':').collect();
            assert!(
                place[0] == "d.toml"
                    && place[1].parse::<usize>().is_ok_and(|l| l >= 6)
                    && place[2].parse::<usize>().is_ok(),
                "{what}: {shown}"
            );
            assert!(
                shown.contains(&format!("`{}.{key}`", kind.as_str())),
                "{what}: {shown}"
            );

            let file = dir.write("d.toml", &text, 0o600);
            let out = Command::new(BIN)
                .args(["check-config", "--config", file.to_str().unwrap()])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2));
            let all = [out.stdout, out.stderr].concat();
            let all = String::from_utf8_lossy(&all);
            assert!(
                !all.contains(secret) && !all.contains("738291047163"),
                "{what}: {all}"
            );
        }
    }
}
