//! # tidesync-client
//!
//! A typed, async client for the tidesync sync API, for Rust apps (desktop,
//! CLI, services): accounts, push and pull, paging, and the event stream.
//! Every request and answer uses the wire types of [`tidesync_protocol`]
//! (re-exported as [`protocol`]), so the client and the server agree on one
//! shape.
//!
//! * Records in answers stay raw JSON ([`RawValue`](serde_json::value::RawValue)):
//!   parse them into your own model types, or store the text as it is.
//! * One [`Error`] type; [`Error::action`] says what the protocol wants you
//!   to do about each failure (retry, log in again, pull from scratch…).
//! * No hidden retries, no background tasks: the app owns its queue, and
//!   decides when to retry (see the crate's README for the rules).
//!
//! ```no_run
//! use tidesync_client::{new_record_id, ChangeBody, Client, EntityType, OpKind, SyncBody};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), tidesync_client::Error> {
//!     let anon = Client::new("http://localhost:5000")?;
//!     let auth = anon.register("ann@example.com", "correct horse", "Ann").await?;
//!     let client = anon.with_token(&auth.token);
//!
//!     // Push one change (a create) from this device, pulling at the same time.
//!     let data = serde_json::json!({"title": "Watch Inception"});
//!     let change = ChangeBody::new(
//!         "op-1", // unique per user; a retry reuses it
//!         EntityType::Item,
//!         OpKind::Create,
//!         new_record_id(),
//!         data.as_object().cloned(),
//!     )
//!     .at("2025-01-01T00:00:00.000Z");
//!     let answer = client
//!         .sync(&SyncBody {
//!             device_id: "laptop".into(),
//!             changes: vec![change],
//!             ..SyncBody::default()
//!         })
//!         .await?;
//!     assert!(answer.acknowledged[0].success);
//!
//!     // Another device downloads everything, page after page.
//!     let all = client.pull_all("phone", None, None).await?;
//!     for (kind, record) in all.updates.iter() {
//!         println!("{kind:?}: {}", record.get());
//!     }
//!     // Keep `all.sync_timestamp`: the next pull starts there.
//!
//!     // Hear of other devices' changes as they commit.
//!     let mut events = client.stream("phone").open().await?;
//!     if let Some(event) = events.next_event().await {
//!         println!("changed up to {}", event?.sync_timestamp);
//!     }
//!     Ok(())
//! }
//! ```
//!
//! HTTPS needs the `rustls` feature; or bring a configured
//! [`reqwest::Client`] with [`Client::with_http`].

mod error;
mod invitations;
mod pager;
mod spaces;
pub mod sse;
mod stream;

use std::sync::Arc;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use error::{Action, ApiError, Error};
pub use pager::{Page, Pager, PullAll};
pub use reqwest;
pub use stream::{EventStream, StreamRequest};
pub use tidesync_protocol as protocol;
pub use tidesync_protocol::auth::{AuthResponse, UserView};
pub use tidesync_protocol::entity::EntityType;
pub use tidesync_protocol::error::ErrorCode;
pub use tidesync_protocol::ids::{RecordId, UserId};
pub use tidesync_protocol::merge::OpKind;
pub use tidesync_protocol::sync::{
    Ack, ChangeBody, ChangeEvent, InitialPage, OpError, OpErrorCode, ServerUpdates, StreamTicket,
    SyncBody, SyncResponse,
};

use tidesync_protocol::auth::{
    ChangePasswordRequest, DeleteAccountRequest, Deleted, LoggedOut, LoginRequest, MeResponse,
    RegisterRequest,
};
use tidesync_protocol::error::Envelope;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A fresh record id (UUID v4): records are named by the client.
pub fn new_record_id() -> RecordId {
    RecordId::from_uuid(uuid::Uuid::new_v4())
}

/// About one answer, besides its data.
#[derive(Clone, Debug)]
pub struct ResponseInfo {
    pub status: StatusCode,
    /// `x-request-id`, to quote when reporting a problem.
    pub request_id: Option<String>,
    /// Size of the JSON body sent.
    pub request_bytes: usize,
    /// Size of the body received (as decoded by the HTTP client).
    pub response_bytes: usize,
}

/// A connection to one tidesync server, optionally signed in as one user.
/// Cheap to clone: clones share the connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Arc<str>,
    token: Option<Arc<str>>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://localhost:5000`).
    pub fn new(base_url: &str) -> Result<Client> {
        Client::with_http(reqwest::Client::new(), base_url)
    }

    /// The same, over an HTTP client of your own (timeouts, proxies, TLS).
    /// Leave its overall request timeout unset if you open event streams.
    pub fn with_http(http: reqwest::Client, base_url: &str) -> Result<Client> {
        let url = Url::parse(base_url).map_err(|e| Error::Url(format!("{base_url}: {e}")))?;
        if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Url(format!("{base_url}: not an http(s) URL")));
        }
        Ok(Client {
            http,
            base: base_url.trim_end_matches('/').into(),
            token: None,
        })
    }

    /// This client, signed in with `token` (from register, login or a
    /// password change).
    pub fn with_token(&self, token: impl AsRef<str>) -> Client {
        Client {
            token: Some(token.as_ref().into()),
            ..self.clone()
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    // --- accounts ---------------------------------------------------------

    /// `POST /api/auth/register`: a new account, signed in.
    pub async fn register(&self, email: &str, password: &str, name: &str) -> Result<AuthResponse> {
        let body = RegisterRequest {
            email: email.into(),
            password: password.into(),
            name: name.into(),
        };
        self.post("/api/auth/register", &body).await
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> Result<AuthResponse> {
        let body = LoginRequest {
            email: email.into(),
            password: password.into(),
        };
        self.post("/api/auth/login", &body).await
    }

    /// `GET /api/auth/me`: the signed-in user.
    pub async fn me(&self) -> Result<UserView> {
        let me: MeResponse = self.get("/api/auth/me").await?;
        Ok(me.user)
    }

    /// `POST /api/auth/logout`: revokes this client's token (only this one).
    pub async fn logout(&self) -> Result<()> {
        let _: LoggedOut = self
            .post("/api/auth/logout", &serde_json::json!({}))
            .await?;
        Ok(())
    }

    /// `POST /api/auth/password`: returns a new token; every other token of
    /// the user, this client's included, is revoked.
    pub async fn change_password(&self, current: &str, new: &str) -> Result<AuthResponse> {
        let body = ChangePasswordRequest {
            current_password: current.into(),
            new_password: new.into(),
        };
        self.post("/api/auth/password", &body).await
    }

    /// `DELETE /api/auth/me`: deletes the account and all its data, for good.
    pub async fn delete_account(&self, password: &str) -> Result<()> {
        let body = DeleteAccountRequest {
            password: password.into(),
        };
        let _: Deleted = self
            .call(Method::DELETE, &self.url("/api/auth/me")?, Some(&body))
            .await?
            .0;
        Ok(())
    }

    // --- sync ---------------------------------------------------------------

    /// `POST /api/sync`: applies `body.changes` (one ack each, in order) and
    /// returns what changed since `body.last_sync_timestamp`.
    pub async fn sync(&self, body: &SyncBody) -> Result<SyncResponse> {
        Ok(self.sync_with_info(body).await?.0)
    }

    /// [`Client::sync`], with the sizes and request id of the exchange.
    pub async fn sync_with_info(&self, body: &SyncBody) -> Result<(SyncResponse, ResponseInfo)> {
        self.call(Method::POST, &self.url("/api/sync")?, Some(body))
            .await
    }

    /// A pure pull (`POST /api/sync` without changes): one page.
    pub async fn pull(
        &self,
        device_id: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<SyncResponse> {
        self.sync(&SyncBody {
            device_id: device_id.into(),
            last_sync_timestamp: cursor.map(Into::into),
            limit,
            ..SyncBody::default()
        })
        .await
    }

    /// `GET /api/sync/initial`: one page from `cursor` (`None`: from scratch).
    pub async fn initial(&self, cursor: Option<&str>, limit: Option<usize>) -> Result<InitialPage> {
        Ok(self.initial_with_info(cursor, limit).await?.0)
    }

    pub async fn initial_with_info(
        &self,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<(InitialPage, ResponseInfo)> {
        let mut url = self.url("/api/sync/initial")?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(c) = cursor {
                q.append_pair("lastSyncTimestamp", c);
            }
            if let Some(l) = limit {
                q.append_pair("limit", &l.to_string());
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        self.call::<_, ()>(Method::GET, &url, None).await
    }

    /// Pages of pulls (`POST /api/sync`) from `cursor`, as device `device_id`.
    pub fn pages(&self, device_id: &str, cursor: Option<&str>, limit: Option<usize>) -> Pager {
        Pager::new(self.clone(), Some(device_id.into()), cursor, limit)
    }

    /// Pages of `GET /api/sync/initial` from `cursor`.
    pub fn initial_pages(&self, cursor: Option<&str>, limit: Option<usize>) -> Pager {
        Pager::new(self.clone(), None, cursor, limit)
    }

    /// Pulls from `cursor` while `hasMore`, collecting every page's records
    /// in order (a record may appear twice, the later copy newer).
    pub async fn pull_all(
        &self,
        device_id: &str,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<PullAll> {
        self.pages(device_id, cursor, limit).collect().await
    }

    /// [`Client::pull_all`] through `GET /api/sync/initial`.
    pub async fn initial_all(&self, cursor: Option<&str>, limit: Option<usize>) -> Result<PullAll> {
        self.initial_pages(cursor, limit).collect().await
    }

    /// `POST /api/sync/stream-ticket`: a single-use ticket (valid 60 s) that
    /// opens the event stream where no `Authorization` header can be sent.
    pub async fn stream_ticket(&self) -> Result<StreamTicket> {
        self.post("/api/sync/stream-ticket", &serde_json::json!({}))
            .await
    }

    /// The event stream of device `device_id`; see [`StreamRequest`].
    pub fn stream(&self, device_id: &str) -> StreamRequest {
        StreamRequest {
            client: self.clone(),
            device_id: device_id.into(),
            last_event_id: None,
            ticket: None,
        }
    }

    // --- plumbing -----------------------------------------------------------

    /// Any endpoint that answers the `{success, data}` envelope, for what
    /// this client has no method for. `path` starts with `/`.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(T, ResponseInfo)> {
        self.call(method, &self.url(path)?, body).await
    }

    pub(crate) fn url(&self, path: &str) -> Result<Url> {
        let s = format!("{}{path}", self.base);
        Url::parse(&s).map_err(|e| Error::Url(format!("{s}: {e}")))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        Ok(self
            .call::<T, ()>(Method::GET, &self.url(path)?, None)
            .await?
            .0)
    }

    async fn post<T: DeserializeOwned, B: Serialize>(&self, path: &str, body: &B) -> Result<T> {
        Ok(self
            .call(Method::POST, &self.url(path)?, Some(body))
            .await?
            .0)
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        url: &Url,
        body: Option<&B>,
    ) -> Result<(T, ResponseInfo)> {
        let mut req = self.http.request(method, url.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let mut request_bytes = 0;
        if let Some(b) = body {
            let bytes = serde_json::to_vec(b).map_err(|e| Error::Protocol(e.to_string()))?;
            request_bytes = bytes.len();
            req = req.header(CONTENT_TYPE, "application/json").body(bytes);
        }
        let res = req.header(ACCEPT, "application/json").send().await?;
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await?;
        if !status.is_success() {
            return Err(error::error_from_response(status, &headers, &bytes));
        }
        let env: Envelope<T> = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            status,
            reason: format!("{e}: {}", error::snippet(&bytes)),
        })?;
        if !env.success {
            return Err(Error::Protocol(format!(
                "{status} with success: false: {}",
                error::snippet(&bytes)
            )));
        }
        Ok((
            env.data,
            ResponseInfo {
                status,
                request_id: error::request_id(&headers),
                request_bytes,
                response_bytes: bytes.len(),
            },
        ))
    }
}
