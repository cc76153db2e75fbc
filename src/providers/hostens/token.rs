//! Hostens' token flow: `POST /token` trades the refresh token for an access
//! token *and a new refresh token*; the one presented is spent.
//!
//! A rotation happens under the [`TokenVault`]'s lock, which every process
//! sharing the archive takes: the newest stored link is read first (a daemon,
//! a `backfill` and a `check-config --online` may all have rotated since this
//! process last looked), and if another process already holds a fresh access
//! token it is used instead of rotating again. The new pair is stored durably
//! before the lock is released and before the access token is used. The
//! rotation runs to its end on a task of its own ([`crate::critical`]), so a
//! shutdown or a cancelled run can never drop a pair the provider already
//! issued. Token bodies are never kept, logged or put in an error.

use std::sync::Arc;

use serde::Deserialize;

use super::{API, checked};
use crate::config::Secret;
use crate::error::{HttpError, ProviderError, VaultError};
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

/// A refresh token and the access token issued with it.
#[derive(Clone)]
struct Pair {
    refresh: Secret,
    access: Option<Secret>,
}

/// What a rotation did, under the vault's lock.
enum Rotated {
    /// Another process had rotated already and its access token is fresh: use it.
    Adopted(Pair),
    /// This process rotated and stored the new pair.
    Stored(Pair),
    /// This process rotated but could not store the pair: keep it, do not use it yet.
    Unsaved(Pair, VaultError),
}

/// A fresh access token, its generation, and whether this process obtained it itself
/// (else it was another process's, adopted from the vault).
pub(super) struct Fresh {
    pub(super) access: Secret,
    pub(super) generation: u64,
    pub(super) own: bool,
}

/// The token flow of one account, shared by its concurrent requests.
pub(super) struct TokenFlow {
    rotator: Arc<Rotator>,
    state: tokio::sync::Mutex<TokenState>,
}

/// What a rotation needs, owned, so that it can outlive the request that started it.
struct Rotator {
    base_url: String,
    client: AccountClient,
    seed: Secret,
    vault: Arc<dyn TokenVault>,
}

#[derive(Default)]
struct TokenState {
    /// Whether the vault was read.
    loaded: bool,
    /// The newest pair this process knows; `None` means start from the seed.
    pair: Option<Pair>,
    /// A pair received but not stored yet: it must not be used until it is.
    unsaved: Option<Pair>,
    /// Bumped whenever the access token changes, so that concurrent 401s rotate once.
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
        let rotator = Rotator {
            base_url: base_url.to_owned(),
            client,
            seed,
            vault,
        };
        Self {
            rotator: Arc::new(rotator),
            state: tokio::sync::Mutex::default(),
        }
    }

    /// The access token to use and its generation, rotating first if there is none.
    pub(super) async fn access_token(&self) -> Result<(Secret, u64), ProviderError> {
        let mut state = self.state.lock().await;
        if !state.loaded {
            let stored = self.rotator.vault.load().await.map_err(store_error)?;
            state.pair = self.rotator.same_chain(stored);
            state.loaded = true;
        }
        if state.unsaved.is_some() {
            self.store_unsaved(&mut state).await?;
        }
        match state.pair.as_ref().and_then(|p| p.access.clone()) {
            Some(access) => Ok((access, state.generation)),
            None => {
                let (access, _) = self.rotate(&mut state, None).await?;
                Ok((access, state.generation))
            }
        }
    }

    /// A fresh access token after the one of `generation` was refused; rotates unless
    /// another request of this process just did.
    pub(super) async fn refresh_after(&self, generation: u64) -> Result<Fresh, ProviderError> {
        let mut state = self.state.lock().await;
        let current = state.pair.as_ref().and_then(|p| p.access.clone());
        match current {
            Some(access) if state.generation != generation && state.unsaved.is_none() => {
                Ok(Fresh {
                    access,
                    generation: state.generation,
                    own: false,
                })
            }
            refused => {
                let (access, own) = self.rotate(&mut state, refused).await?;
                Ok(Fresh {
                    access,
                    generation: state.generation,
                    own,
                })
            }
        }
    }

    /// Rotates (or adopts another process's rotation) on a task that cannot be aborted,
    /// and takes the result into `state`; says whether this process rotated itself.
    async fn rotate(
        &self,
        state: &mut TokenState,
        refused: Option<Secret>,
    ) -> Result<(Secret, bool), ProviderError> {
        let rotator = Arc::clone(&self.rotator);
        let known = state.pair.as_ref().map(|p| p.refresh.clone());
        let rotated = crate::critical::run(async move { rotator.rotate(known, refused).await })
            .await
            .ok_or_else(|| ProviderError::TokenStore {
                source: VaultError::Storage("the rotation task stopped".to_owned()),
            })??;
        state.generation += 1;
        let own = matches!(rotated, Rotated::Stored(_));
        match rotated {
            Rotated::Adopted(pair) | Rotated::Stored(pair) => {
                let access = pair.access.clone();
                state.pair = Some(pair);
                let access = access.ok_or_else(|| ProviderError::TokenStore {
                    source: VaultError::Storage("no access token came with the pair".to_owned()),
                })?;
                Ok((access, own))
            }
            Rotated::Unsaved(pair, source) => {
                tracing::error!(error = %source, "Cannot store the rotated refresh token; it is kept in memory and not used until stored");
                state.unsaved = Some(pair);
                Err(ProviderError::TokenStore { source })
            }
        }
    }

    /// Stores a pair an earlier save failed on; only then is it used.
    async fn store_unsaved(&self, state: &mut TokenState) -> Result<(), ProviderError> {
        let Some(pair) = state.unsaved.clone() else {
            return Ok(());
        };
        let mut guard = self.rotator.vault.lock().await.map_err(store_error)?;
        guard
            .save(self.rotator.stored(&pair))
            .await
            .map_err(store_error)?;
        state.unsaved = None;
        state.pair = Some(pair);
        state.generation += 1;
        Ok(())
    }
}

impl Rotator {
    /// The stored chain if it grew from the configured seed; a new seed starts anew.
    fn same_chain(&self, stored: Option<StoredToken>) -> Option<Pair> {
        match stored {
            Some(t) if t.seed.expose() == self.seed.expose() => Some(Pair {
                refresh: t.refresh,
                access: t.access,
            }),
            Some(_) => {
                tracing::info!(
                    "The configured refresh_token differs from the one the stored chain started from; starting anew from it"
                );
                None
            }
            None => None,
        }
    }

    fn stored(&self, pair: &Pair) -> StoredToken {
        StoredToken {
            seed: self.seed.clone(),
            refresh: pair.refresh.clone(),
            access: pair.access.clone(),
        }
    }

    /// Under the vault's lock: adopts a fresh pair another process stored, or presents
    /// the newest refresh token to `POST /token` and stores what comes back.
    async fn rotate(
        &self,
        known: Option<Secret>,
        refused: Option<Secret>,
    ) -> Result<Rotated, ProviderError> {
        let mut guard = self.vault.lock().await.map_err(store_error)?;
        let newest = self.same_chain(guard.stored());
        if let Some(pair) = &newest {
            let fresh = pair
                .access
                .as_ref()
                .is_some_and(|a| refused.as_ref().is_none_or(|r| r.expose() != a.expose()));
            if fresh {
                tracing::debug!("Another process rotated the token; using its access token");
                return Ok(Rotated::Adopted(pair.clone()));
            }
        }
        let present = newest
            .map(|p| p.refresh)
            .or(known)
            .unwrap_or_else(|| self.seed.clone());
        let pair = self.exchange(&present).await?;
        match guard.save(self.stored(&pair)).await {
            Ok(()) => {
                tracing::info!("Refresh token rotated and stored");
                Ok(Rotated::Stored(pair))
            }
            Err(e) => Ok(Rotated::Unsaved(pair, e)),
        }
    }

    /// `POST /token` with `refresh`. Retried only when it surely was not acted on: an
    /// answer lost after it was sent may mean Hostens already spent `refresh`.
    async fn exchange(&self, refresh: &Secret) -> Result<Pair, ProviderError> {
        let url = API.url(&self.base_url, TOKEN, &[TOKEN])?;
        let body = serde_json::json!({ "refresh_token": refresh.expose() });
        let sent = self
            .client
            .send_unrepeatable(TOKEN, |c| {
                c.post(url.clone())
                    .header("Accept", "application/json")
                    .json(&body)
            })
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            Err(e @ (HttpError::Timeout | HttpError::Transport(_))) => {
                return Err(ProviderError::TokenLost { source: e });
            }
            Err(e) => return Err(API.http_error(TOKEN, e, TOKEN_HINT)),
        };
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
        Ok(Pair {
            refresh: Secret::new(&pair.refresh),
            access: Some(Secret::new(&pair.token)),
        })
    }
}

fn store_error(source: VaultError) -> ProviderError {
    ProviderError::TokenStore { source }
}

/// The pair of a `POST /token` answer; a bad answer is never kept (it may hold a token).
fn parse_pair(status: u16, body: &[u8]) -> Result<TokenPair, ProviderError> {
    let withheld = || {
        Box::new(RawResponse {
            endpoint: TOKEN.to_owned(),
            status,
            body: bytes::Bytes::from_static(b"[token response withheld]"),
            secret_keys: &[],
        })
    };
    // Never serde's message: a token of the wrong type (a number) would be quoted in it.
    let pair: TokenPair = decode(body).map_err(|_| ProviderError::Malformed {
        endpoint: TOKEN.to_owned(),
        reason: "not a token pair (`token` and `refresh` strings expected)".to_owned(),
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
