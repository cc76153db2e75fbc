//! Hostens' token flow: `POST /token` trades the refresh token for an access
//! token *and a new refresh token*.
//!
//! The new pair is handed to the [`TokenVault`] and used only once it is
//! stored durably; the next start loads it, so the refresh token in
//! `daemon.toml` is only the seed. Concurrent requests of the account share
//! one state, so a burst of 401s refreshes once. Token bodies are never
//! kept, logged or put in an error.

use std::sync::Arc;

use serde::Deserialize;

use super::{API, checked};
use crate::config::Secret;
use crate::error::ProviderError;
use crate::http::AccountClient;
use crate::model::RawResponse;
use crate::providers::json::decode;
use crate::providers::{StoredToken, TokenVault};

/// The endpoint, as named in errors and logs.
pub(super) const TOKEN: &str = "token";

/// What a refused refresh token means and what to do.
const TOKEN_HINT: &str = "; the refresh token was refused: put a new `refresh_token` in daemon.toml \
     (every rotated one is kept, so this means it was revoked or expired)";

/// `POST /token`'s answer.
#[derive(Deserialize)]
struct TokenPair {
    token: String,
    refresh: String,
}

/// The token flow of one account, shared by its concurrent requests.
pub(super) struct TokenFlow {
    base_url: String,
    client: AccountClient,
    seed: Secret,
    vault: Arc<dyn TokenVault>,
    state: tokio::sync::Mutex<TokenState>,
}

#[derive(Default)]
struct TokenState {
    /// Whether the vault was read.
    loaded: bool,
    /// The refresh token to use next; `None` means the seed.
    refresh: Option<Secret>,
    /// The access token in use.
    access: Option<Secret>,
    /// A pair was received but is not stored yet: it must not be used.
    unsaved: bool,
    /// Bumped on every refresh, so that concurrent 401s refresh only once.
    generation: u64,
}

impl TokenFlow {
    /// The flow of an account at `base_url` whose chain starts from `seed`.
    pub(super) fn new(
        base_url: &str,
        client: AccountClient,
        seed: Secret,
        vault: Arc<dyn TokenVault>,
    ) -> Self {
        Self {
            base_url: base_url.to_owned(),
            client,
            seed,
            vault,
            state: tokio::sync::Mutex::default(),
        }
    }

    /// The access token to use and its generation, refreshing first if there is none.
    pub(super) async fn access_token(&self) -> Result<(Secret, u64), ProviderError> {
        let mut state = self.state.lock().await;
        if !state.loaded {
            let stored = self
                .vault
                .load()
                .await
                .map_err(|source| ProviderError::TokenStore { source })?;
            match stored {
                Some(t) if t.seed.expose() == self.seed.expose() => {
                    state.refresh = Some(t.refresh);
                    state.access = t.access;
                }
                Some(_) => tracing::info!(
                    "The configured refresh_token differs from the one the stored chain started from; starting anew from it"
                ),
                None => {}
            }
            state.loaded = true;
        }
        if state.unsaved {
            self.save(&mut state).await?;
        }
        match state.access.clone() {
            Some(access) => Ok((access, state.generation)),
            None => {
                let access = self.refresh(&mut state).await?;
                Ok((access, state.generation))
            }
        }
    }

    /// A fresh access token after `generation` was refused; refreshes unless another request just did.
    pub(super) async fn refresh_after(&self, generation: u64) -> Result<Secret, ProviderError> {
        let mut state = self.state.lock().await;
        match state.access.clone() {
            Some(access) if state.generation != generation && !state.unsaved => Ok(access),
            _ => self.refresh(&mut state).await,
        }
    }

    /// `POST /token`; the new pair is stored durably before the access token is returned.
    async fn refresh(&self, state: &mut TokenState) -> Result<Secret, ProviderError> {
        let url = API.url(&self.base_url, TOKEN, &[TOKEN])?;
        let refresh = state.refresh.clone().unwrap_or_else(|| self.seed.clone());
        let body = serde_json::json!({ "refresh_token": refresh.expose() });
        let resp = self
            .client
            .send(TOKEN, |c| {
                c.post(url.clone())
                    .header("Accept", "application/json")
                    .json(&body)
            })
            .await
            .map_err(|e| API.http_error(TOKEN, e, TOKEN_HINT))?;
        let status = resp.status.as_u16();
        if status == 400 || status == 404 {
            return Err(ProviderError::Rejected {
                endpoint: TOKEN.to_owned(),
                message: API.message(&resp),
                hint: TOKEN_HINT,
            });
        }
        let resp = checked(TOKEN, resp)?;
        let pair = parse_pair(status, &resp.body)?;
        let access = Secret::new(&pair.token);
        state.refresh = Some(Secret::new(&pair.refresh));
        state.access = Some(access.clone());
        state.unsaved = true;
        state.generation += 1;
        self.save(state).await?;
        tracing::info!("Refresh token rotated and stored");
        Ok(access)
    }

    /// Stores the state's pair in the vault; until that succeeds it stays unusable.
    async fn save(&self, state: &mut TokenState) -> Result<(), ProviderError> {
        let (Some(refresh), access) = (state.refresh.clone(), state.access.clone()) else {
            return Ok(());
        };
        let token = StoredToken {
            seed: self.seed.clone(),
            refresh,
            access,
        };
        match self.vault.save(token).await {
            Ok(()) => {
                state.unsaved = false;
                Ok(())
            }
            Err(source) => {
                tracing::error!(error = %source, "Cannot store the rotated refresh token; it is kept in memory and not used until stored");
                Err(ProviderError::TokenStore { source })
            }
        }
    }
}

/// The pair of a `POST /token` answer; a bad answer is never kept (it may hold a token).
fn parse_pair(status: u16, body: &[u8]) -> Result<TokenPair, ProviderError> {
    let withheld = || {
        Box::new(RawResponse {
            endpoint: TOKEN.to_owned(),
            status,
            body: bytes::Bytes::from_static(b"[token response withheld]"),
        })
    };
    // serde quotes a value only when its type is wrong, never a token that is a string.
    let pair: TokenPair = decode(body).map_err(|reason| ProviderError::Malformed {
        endpoint: TOKEN.to_owned(),
        reason,
        raw: withheld(),
    })?;
    if pair.token.trim().is_empty() || pair.refresh.trim().is_empty() {
        return Err(ProviderError::Malformed {
            endpoint: TOKEN.to_owned(),
            reason: "empty `token` or `refresh`".to_owned(),
            raw: withheld(),
        });
    }
    Ok(pair)
}
