//! Secrets removed from what the archive keeps: raw bodies and object snapshots.
//!
//! Providers name their own credential fields (`proxy_password`, `username`);
//! beyond those, any key whose words say it holds a secret is removed, whatever
//! its case or separator (`proxy_pass`, `API-Key`, `passwd`, `secretToken`,
//! `pwd`, `auth`), at any depth. In every string value that is kept, the
//! user-info of a URL (`http://user:pw@host`) and the credentials of a proxy
//! line (`host:port:user:pass`, `user:pass@host:port`) are masked as `***`.
//! A body that is not JSON keeps its text with those values masked, unless a
//! quoted key in it names a secret: then it is withheld whole.
//!
//! Redaction runs only when a body is kept (`keep_raw`), never on the hot path
//! of a sync. This module is a bottom layer: it imports nothing of the crate.

use bytes::Bytes;
use serde_json::Value;

/// Words that make a key a secret's, compared whole (after splitting the key at
/// separators and case changes, lower-cased).
pub const SECRET_WORDS: &[&str] = &[
    "pass",
    "passwd",
    "password",
    "passwords",
    "passphrase",
    "pwd",
    "pw",
    "secret",
    "secrets",
    "token",
    "tokens",
    "key",
    "keys",
    "apikey",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "accesstoken",
    "refreshtoken",
    "authtoken",
    "clientsecret",
    "privatekey",
    "secretkey",
    "rootpass",
];

/// What a masked credential shows.
const MASK: &str = "***";

/// What a body that cannot be searched is replaced with.
const WITHHELD: &[u8] = b"[body withheld: not JSON, and it names a secret field]";

/// The body as it may be kept: every key naming a secret (`provider_keys`, or
/// [`SECRET_WORDS`]) removed at any depth, and credentials in values masked.
pub fn redact_body(body: &Bytes, provider_keys: &[&str]) -> Bytes {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            if !strip(&mut value, provider_keys) {
                return body.clone();
            }
            serde_json::to_vec(&value)
                .map(Bytes::from)
                .unwrap_or_default()
        }
        Err(_) => redact_text(body, provider_keys),
    }
}

/// Removes every key naming a secret from `value` and masks credentials in its strings,
/// at any depth; `true` when anything changed.
pub fn strip(value: &mut Value, provider_keys: &[&str]) -> bool {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|k, _| !is_secret_key(k, provider_keys));
            let mut changed = map.len() != before;
            for v in map.values_mut() {
                changed |= strip(v, provider_keys);
            }
            changed
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, v| strip(v, provider_keys) | changed),
        Value::String(text) => match mask_credentials(text) {
            Some(masked) => {
                *text = masked;
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// Whether `key` names a secret: it holds one of `provider_keys` (ignoring case and
/// every character but letters and digits), or one of its words is in [`SECRET_WORDS`].
pub fn is_secret_key(key: &str, provider_keys: &[&str]) -> bool {
    let folded = folded(key);
    let provider = provider_keys.iter().any(|k| {
        let k = folded_str(k);
        !k.is_empty() && folded.contains(&k)
    });
    provider
        || words(key)
            .iter()
            .any(|w| SECRET_WORDS.contains(&w.as_str()))
}

/// The words of a key: split at anything but letters and digits, and where a lower-case
/// letter or digit is followed by an upper-case one (`secretToken`, `APIKey2`).
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut prev: Option<char> = None;
    let chars: Vec<char> = key.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            words.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
            prev = None;
            continue;
        }
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let boundary = prev.is_some_and(|p| {
            (p.is_lowercase() || p.is_ascii_digit()) && c.is_uppercase()
                || p.is_uppercase() && c.is_uppercase() && next_lower
        });
        if boundary && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.extend(c.to_lowercase());
        prev = Some(c);
    }
    words.extend((!word.is_empty()).then_some(word));
    words
}

fn folded(text: &str) -> String {
    text.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

fn folded_str(text: &str) -> String {
    folded(text)
}

/// `text` with the credentials of every URL and proxy line in it masked; `None` when it
/// holds none.
pub fn mask_credentials(text: &str) -> Option<String> {
    if !text.contains(':') {
        return None;
    }
    let mut changed = false;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '"')
            .unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        match mask_token(token) {
            Some(masked) => {
                out.push_str(&masked);
                changed = true;
            }
            None => out.push_str(token),
        }
        let sep_len = tail.chars().next().map_or(0, char::len_utf8);
        out.push_str(&tail[..sep_len]);
        rest = &tail[sep_len..];
    }
    changed.then_some(out)
}

/// One whitespace-free token masked: `scheme://user:pw@host…`, `user:pw@host:port`, or
/// `host:port:user:pass`.
fn mask_token(token: &str) -> Option<String> {
    if let Some(scheme_end) = token.find("://") {
        let after = scheme_end + 3;
        let authority_end = token[after..]
            .find(['/', '?', '#'])
            .map_or(token.len(), |i| after + i);
        let at = token[after..authority_end].rfind('@')? + after;
        return Some(format!("{}{MASK}{}", &token[..after], &token[at..]));
    }
    if let Some(at) = token.rfind('@')
        && token[..at].contains(':')
        && token[at + 1..].contains(':')
    {
        return Some(format!("{MASK}{}", &token[at..]));
    }
    let fields: Vec<&str> = token.split(':').collect();
    // A host is a name with a dot (or an IPv4 address): never a date-time's "2026-01-01T10".
    let is_host = |h: &str| {
        h.contains('.')
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    let is_port = |p: &str| p.parse::<u16>().is_ok_and(|n| n > 0) && p.len() <= 5;
    if fields.len() >= 4
        && is_host(fields[0])
        && is_port(fields[1])
        && fields.iter().all(|f| !f.is_empty())
    {
        return Some(format!("{}:{}:{MASK}:{MASK}", fields[0], fields[1]));
    }
    None
}

/// A body that is not JSON: withheld whole when a quoted key in it names a secret,
/// else kept with the credentials in it masked.
fn redact_text(body: &Bytes, provider_keys: &[&str]) -> Bytes {
    let text = String::from_utf8_lossy(body);
    if quoted_keys(&text).any(|k| is_secret_key(&k, provider_keys)) {
        return Bytes::from_static(WITHHELD);
    }
    match mask_credentials(&text) {
        Some(masked) => Bytes::from(masked),
        None => body.clone(),
    }
}

/// Every `"…"` in `text` followed by a colon (a JSON key, also in a truncated body),
/// with its escapes decoded where they can be.
fn quoted_keys(text: &str) -> impl Iterator<Item = String> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if bytes[i] != b'"' {
                i += 1;
                continue;
            }
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            let end = i.min(bytes.len());
            i += 1;
            let after = text.get(end + 1..).unwrap_or_default().trim_start();
            if after.starts_with(':') {
                let literal = text.get(start..=end).unwrap_or_default();
                let key = serde_json::from_str::<String>(literal)
                    .unwrap_or_else(|_| literal.trim_matches('"').to_owned());
                return Some(key);
            }
        }
        None
    })
}

/// `text` with every control character written as `\u{…}`: what a terminal or a log
/// line may show of a provider's text (an id with `ESC ]0;…BEL` in it would retitle the
/// operator's terminal).
pub fn escape_control(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys whose words name a secret, in any case or separator, and the providers' own.
    #[test]
    fn secret_keys_in_any_spelling() {
        for key in [
            "proxy_pass",
            "api_key",
            "API-Key",
            "apiKey",
            "passwd",
            "secret_token",
            "secretToken",
            "pwd",
            "auth",
            "Authorization",
            "pass",
            "credentials",
            "x-auth-token",
            "PROXY_PASSWORD",
        ] {
            assert!(is_secret_key(key, &[]), "{key}");
        }
        for key in [
            "monkey",
            "passenger",
            "keyboard_layout",
            "author",
            "date",
            "bandwidth_total_mb",
            "auto_renewal",
            "status",
        ] {
            assert!(!is_secret_key(key, &[]), "{key}");
        }
        assert!(is_secret_key(" Proxy-Password ", &["proxy_password"]));
        assert!(is_secret_key("old_proxy_password2", &["proxy_password"]));
        assert!(is_secret_key("username", &["username"]));
    }

    /// URL user-info and proxy lines are masked wherever they stand in a value.
    #[test]
    fn credentials_in_values_are_masked() {
        let cases = [
            ("http://u:pw@h", "http://***@h"),
            (
                "see https://user:s3cret@proxy.example:8080/path?x=1 now",
                "see https://***@proxy.example:8080/path?x=1 now",
            ),
            (
                "gate.example.com:7777:alice:s3cret",
                "gate.example.com:7777:***:***",
            ),
            (
                "alice:s3cret@gate.example.com:7777",
                "***@gate.example.com:7777",
            ),
            ("a, 1.2.3.4:80:bob:pw; b", "a, 1.2.3.4:80:***:***; b"),
        ];
        for (text, masked) in cases {
            assert_eq!(mask_credentials(text).as_deref(), Some(masked), "{text}");
        }
        for text in [
            "2026-01-01 10:00:00",
            "2018-07-18T14:04:34+00:00",
            "2026-01-01T10:00:00.123+00:00",
            "https://example.com/a@b",
            "12:30",
            "ratio 1:2:3",
            "mailto:x@y",
        ] {
            assert_eq!(mask_credentials(text), None, "{text}");
        }
    }

    /// A truncated body that names a secret key is withheld; one that does not is kept
    /// with its credentials masked.
    #[test]
    fn bodies_that_are_not_json() {
        let broken = Bytes::from_static(br#"{"proxy_pass":"hunter2""#);
        assert_eq!(redact_body(&broken, &[]), Bytes::from_static(WITHHELD));
        let escaped = Bytes::from_static(br#"{"\u0070wd":"hunter2""#);
        assert_eq!(redact_body(&escaped, &[]), Bytes::from_static(WITHHELD));
        let html = Bytes::from_static(b"<html>proxy http://u:hunter2@h down</html>");
        assert_eq!(
            redact_body(&html, &[]),
            Bytes::from_static(b"<html>proxy http://***@h down</html>")
        );
        let plain = Bytes::from_static(br#"{"ok": true, "usage": [{"date": "2026-01-01"}"#);
        assert_eq!(redact_body(&plain, &[]), plain);
    }

    /// Control characters are written out, everything else kept.
    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_control("u1\u{1b}]0;pwned\u{7}"),
            "u1\\u{1b}]0;pwned\\u{7}"
        );
        assert_eq!(escape_control("Ann é"), "Ann é");
    }

    /// A JSON body without anything secret is kept byte for byte.
    #[test]
    fn clean_bodies_are_kept_as_they_came() {
        let body = Bytes::from_static(b"{\"b\": 1,   \"a\": [\"x\"]}");
        assert_eq!(redact_body(&body, &["password"]), body);
    }
}
