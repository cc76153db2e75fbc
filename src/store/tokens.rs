//! The rotating credentials some providers hand out (Hostens refresh tokens), in `auth_token`.
//!
//! A refresh token that rotates is only good once: losing the newest one
//! locks the account out. So [`save_token`] commits with
//! `PRAGMA synchronous = FULL`, which syncs the WAL to disk before the
//! commit returns, and the provider uses a new token only after that. The
//! table holds secrets; nothing here logs, and no view or command reads it.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::StoreError;

/// One account's token chain as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// The `refresh_token` from the config this chain started from.
    pub seed: String,
    /// The newest refresh token.
    pub refresh_token: String,
    /// The newest access token, if one was issued.
    pub access_token: Option<String>,
}

impl std::fmt::Debug for TokenRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenRow([redacted])")
    }
}

/// The stored chain of one account, if any.
pub fn load_token(
    conn: &Connection,
    provider: &str,
    account: &str,
) -> Result<Option<TokenRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT seed, refresh_token, access_token FROM auth_token \
             WHERE provider = ?1 AND account = ?2",
            params![provider, account],
            |r| {
                Ok(TokenRow {
                    seed: r.get(0)?,
                    refresh_token: r.get(1)?,
                    access_token: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Replaces the account's chain and syncs it to disk before returning.
pub fn save_token(
    conn: &mut Connection,
    provider: &str,
    account: &str,
    token: &TokenRow,
    rotated_at: &str,
) -> Result<(), StoreError> {
    conn.pragma_update(None, "synchronous", "FULL")?;
    let result = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO auth_token (provider, account, seed, refresh_token, access_token, rotated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (provider, account) DO UPDATE SET seed = ?3, refresh_token = ?4, \
             access_token = ?5, rotated_at = ?6",
            params![
                provider,
                account,
                token.seed,
                token.refresh_token,
                token.access_token,
                rotated_at
            ],
        )?;
        tx.commit()
    })();
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(result?)
}
