//! Who may read `/report` and `/metrics` on the admin port: a bearer token, authenticated by the
//! API server (TokenReview) and authorized for `get` on the path as a non-resource URL
//! (SubjectAccessReview), the way kube-rbac-proxy and controller-runtime's secure metrics do it.
//! Decisions are cached per token hash and path, so a Prometheus scrape costs no API call.
//!
//! Failure is never open: a review the API server cannot answer is a 503. Malformed
//! credentials are refused here and never sent to the API server.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::Semaphore;

/// The admin paths that can require a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protected {
    Report,
    Metrics,
}

impl Protected {
    /// The non-resource URL a user must be allowed to `get`.
    pub fn path(self) -> &'static str {
        match self {
            Protected::Report => "/report",
            Protected::Metrics => "/metrics",
        }
    }
}

/// Longest `Authorization` header value looked at. Service-account tokens are 1–2 KB and OIDC
/// ID tokens rarely pass 4 KB; anything much longer is not a token worth a review.
pub const MAX_AUTHORIZATION_BYTES: usize = 16 * 1024;

/// Settings of the token check.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// Require a token for `/metrics` as well (`--metrics-auth`); `/report` always requires one.
    pub metrics: bool,
    /// How long an allowed decision is reused.
    pub ttl: Duration,
    /// How long a refusal (unknown token, not allowed) is reused: shorter, so a new
    /// RoleBinding takes effect soon.
    pub denied_ttl: Duration,
    /// Cached decisions at most; beyond it the entries closest to expiry go first.
    pub max_entries: usize,
    /// Deadline for one review call.
    pub review_timeout: Duration,
    /// Reviews in flight at once; more requests wait, so a flood of made-up tokens cannot turn
    /// into a flood of API calls.
    pub max_concurrent_reviews: usize,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            metrics: false,
            ttl: Duration::from_secs(60),
            denied_ttl: Duration::from_secs(10),
            max_entries: 4096,
            review_timeout: Duration::from_secs(5),
            max_concurrent_reviews: 4,
        }
    }
}

/// Why a request is refused, and with which status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The credentials are malformed (400): never sent to the API server.
    #[error("{0}")]
    BadRequest(&'static str),
    /// No token, not a bearer token, or one the API server does not accept (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// Authenticated, but RBAC does not allow `get` on the path (403).
    #[error("{0}")]
    Forbidden(String),
    /// The API server could not be asked (503): never answered as allowed.
    #[error("{0}")]
    Unavailable(String),
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            )],
            format!("{self}\n"),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dbhook\""),
            );
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// The access rule of the admin port.
pub struct AdminAccess {
    reviewer: Option<Reviewer>,
    metrics: bool,
}

impl AdminAccess {
    /// Everything open: standalone mode, where there is no API server to ask.
    pub fn open() -> AdminAccess {
        AdminAccess {
            reviewer: None,
            metrics: false,
        }
    }

    /// Tokens reviewed by the API server behind `client`.
    pub fn reviewed(client: kube::Client, options: AuthOptions) -> AdminAccess {
        AdminAccess {
            metrics: options.metrics,
            reviewer: Some(Reviewer::new(client, options)),
        }
    }

    /// Whether `path` needs a token.
    pub fn protects(&self, path: Protected) -> bool {
        self.reviewer.is_some() && (path == Protected::Report || self.metrics)
    }

    /// Ok when the request may read `path`.
    pub async fn check(&self, path: Protected, headers: &HeaderMap) -> Result<(), Refusal> {
        match &self.reviewer {
            Some(reviewer) if self.protects(path) => {
                let token = bearer_token(headers)?;
                reviewer.decide(token, path).await
            }
            _ => Ok(()),
        }
    }

    /// What the startup log says about the admin port.
    pub fn describe(&self) -> String {
        match (&self.reviewer, self.metrics) {
            (None, _) => "/report and /metrics are open to anyone who reaches the admin port: standalone, \
                          there is no API server to check tokens with"
                .into(),
            (Some(_), true) => "/report and /metrics need a bearer token allowed to get the path \
                                (TokenReview + SubjectAccessReview)"
                .into(),
            (Some(_), false) => "/report needs a bearer token allowed to get /report (TokenReview + \
                                 SubjectAccessReview); /metrics is open (--metrics-auth is off)"
                .into(),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header. Malformed headers are 400, a
/// missing header or another scheme 401; nothing here reaches the API server.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(Refusal::Unauthenticated(
            "a bearer token is required (Authorization: Bearer <token>)".into(),
        ));
    };
    if values.next().is_some() {
        return Err(Refusal::BadRequest("more than one Authorization header"));
    }
    let bytes = value.as_bytes();
    if bytes.len() > MAX_AUTHORIZATION_BYTES {
        return Err(Refusal::BadRequest("Authorization header too long"));
    }
    // Visible ASCII and spaces only: a token with control characters or non-ASCII bytes is not
    // a token anyone was issued.
    if !bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(Refusal::BadRequest(
            "Authorization header holds control or non-ASCII characters",
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| Refusal::BadRequest("Authorization header is not ASCII"))?;
    let (scheme, rest) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Unauthenticated(
            "only bearer tokens are accepted (Authorization: Bearer <token>)".into(),
        ));
    }
    let token = rest.trim_start_matches(' ');
    if token.is_empty() {
        return Err(Refusal::Unauthenticated("empty bearer token".into()));
    }
    // RFC 6750's token68: what JWTs and Kubernetes bootstrap tokens are made of.
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    if !token.bytes().all(token68) {
        return Err(Refusal::BadRequest("malformed bearer token"));
    }
    Ok(token)
}

/// The outcome of one review, as cached.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    Allowed,
    Unauthenticated,
    Forbidden(String),
}

/// SHA-256 of a token: the cache never holds the token itself.
type TokenHash = [u8; 32];

fn hash(token: &str) -> TokenHash {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Decisions by token hash and path, each until its expiry; bounded in size.
struct Cache {
    entries: HashMap<(TokenHash, Protected), (Decision, Instant)>,
    max: usize,
}

impl Cache {
    fn new(max: usize) -> Cache {
        Cache {
            entries: HashMap::new(),
            max: max.max(1),
        }
    }

    fn get(&self, key: &(TokenHash, Protected), now: Instant) -> Option<Decision> {
        self.entries
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(d, _)| d.clone())
    }

    fn insert(&mut self, key: (TokenHash, Protected), decision: Decision, expires: Instant, now: Instant) {
        if expires <= now {
            return;
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max {
            self.entries.retain(|_, (_, e)| *e > now);
            if self.entries.len() >= self.max {
                let soonest = self.entries.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| *k);
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (decision, expires));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Asks the API server, through the cache.
struct Reviewer {
    client: kube::Client,
    options: AuthOptions,
    cache: Mutex<Cache>,
    in_flight: Semaphore,
}

impl Reviewer {
    fn new(client: kube::Client, options: AuthOptions) -> Reviewer {
        Reviewer {
            client,
            cache: Mutex::new(Cache::new(options.max_entries)),
            in_flight: Semaphore::new(options.max_concurrent_reviews.max(1)),
            options,
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached(&self, key: &(TokenHash, Protected)) -> Option<Decision> {
        self.cache().get(key, Instant::now())
    }

    async fn decide(&self, token: &str, path: Protected) -> Result<(), Refusal> {
        let key = (hash(token), path);
        // Bound first: a guard in the match scrutinee would live across the await.
        let cached = self.cached(&key);
        let decision = match cached {
            Some(d) => d,
            None => self.review_and_cache(token, key).await?,
        };
        match decision {
            Decision::Allowed => Ok(()),
            Decision::Unauthenticated => Err(Refusal::Unauthenticated("invalid bearer token".into())),
            Decision::Forbidden(why) => Err(Refusal::Forbidden(why)),
        }
    }

    /// One review at most `max_concurrent_reviews` at a time; errors are not cached.
    async fn review_and_cache(&self, token: &str, key: (TokenHash, Protected)) -> Result<Decision, Refusal> {
        let deadline = self.options.review_timeout;
        // Waiting for a slot counts against the deadline too: a client queued behind a hung
        // API server gets its 503 in time.
        let _permit = tokio::time::timeout(deadline, self.in_flight.acquire())
            .await
            .map_err(|_| Refusal::Unavailable("cannot check the token: too many reviews in progress".into()))?
            .map_err(|_| Refusal::Unavailable("shutting down".into()))?;
        // Another request with the same token may have finished its review meanwhile.
        if let Some(decision) = self.cached(&key) {
            return Ok(decision);
        }
        let path = key.1;
        let decision = tokio::time::timeout(deadline, self.review(token, path))
            .await
            .map_err(|_| {
                tracing::warn!(
                    path = path.path(),
                    "admin auth: the API server did not answer the review in time"
                );
                Refusal::Unavailable("cannot check the token: the API server did not answer in time".into())
            })??;
        let ttl = if decision == Decision::Allowed {
            self.options.ttl
        } else {
            self.options.denied_ttl
        };
        let now = Instant::now();
        self.cache().insert(key, decision.clone(), now + ttl, now);
        Ok(decision)
    }

    /// TokenReview, then SubjectAccessReview for the user it names.
    async fn review(&self, token: &str, path: Protected) -> Result<Decision, Refusal> {
        let unavailable = |what: &str, e: kube::Error| {
            tracing::warn!(error = %e, path = path.path(), "admin auth: {what} failed; answering 503");
            Refusal::Unavailable(format!("cannot check the token: {what} failed"))
        };
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let reviewed = Api::<TokenReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| unavailable("TokenReview", e))?;
        let status = reviewed.status.unwrap_or_default();
        let user = match (status.authenticated, status.user) {
            (Some(true), Some(user)) if user.username.as_deref().is_some_and(|u| !u.is_empty()) => user,
            _ => {
                tracing::debug!(
                    path = path.path(),
                    error = status.error.as_deref().unwrap_or(""),
                    "admin auth: token not authenticated"
                );
                return Ok(Decision::Unauthenticated);
            }
        };
        let UserInfo {
            username,
            uid,
            groups,
            extra,
        } = user;
        let sar = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: username.clone(),
                uid,
                groups,
                extra,
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.path().to_string()),
                    verb: Some("get".into()),
                }),
                resource_attributes: None,
            },
            ..SubjectAccessReview::default()
        };
        let answered = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &sar)
            .await
            .map_err(|e| unavailable("SubjectAccessReview", e))?;
        let status = answered.status.unwrap_or_default();
        let user = username.unwrap_or_default();
        if status.allowed {
            tracing::debug!(user, path = path.path(), "admin auth: allowed");
            Ok(Decision::Allowed)
        } else {
            tracing::info!(
                user,
                path = path.path(),
                reason = status.reason.as_deref().unwrap_or(""),
                "admin auth: forbidden"
            );
            Ok(Decision::Forbidden(format!(
                "user {user:?} may not get {path}: bind the chart's ClusterRole <fullname>-report-reader to it, \
                 or grant get on the non-resource URL {path}",
                path = path.path()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    #[test]
    fn a_bearer_token_is_extracted() {
        assert_eq!(bearer_token(&headers(&[b"Bearer abc.DEF-_~+/="])), Ok("abc.DEF-_~+/="));
        assert_eq!(bearer_token(&headers(&[b"bearer  tok"])), Ok("tok"));
    }

    #[test]
    fn missing_or_other_schemes_are_401() {
        for h in [
            headers(&[]),
            headers(&[b"Basic dXNlcjpwYXNz"]),
            headers(&[b"Bearer"]),
            headers(&[b"Bearer   "]),
            headers(&[b"Token abc"]),
        ] {
            let e = bearer_token(&h).unwrap_err();
            assert_eq!(e.status(), StatusCode::UNAUTHORIZED, "{h:?}: {e}");
        }
    }

    #[test]
    fn malformed_credentials_are_400() {
        let long = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_BYTES));
        let cases: [&[u8]; 5] = [
            b"Bearer a\tb",
            b"Bearer \xff\xfe",
            b"Bearer a b",
            b"Bearer a\"b",
            long.as_bytes(),
        ];
        for case in cases {
            let e = bearer_token(&headers(&[case])).unwrap_err();
            assert_eq!(
                e.status(),
                StatusCode::BAD_REQUEST,
                "{:?}: {e}",
                String::from_utf8_lossy(case)
            );
        }
        let e = bearer_token(&headers(&[b"Bearer a", b"Bearer b"])).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn refusals_carry_their_status_and_challenge() {
        let r = Refusal::Unauthenticated("x".into()).into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_some());
        assert_eq!(
            Refusal::Forbidden("x".into()).into_response().status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            Refusal::Unavailable("x".into()).into_response().status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn the_cache_keys_on_a_hash_and_path_and_honours_expiry() {
        let t0 = Instant::now();
        let mut cache = Cache::new(8);
        let key = (hash("secret-token"), Protected::Report);
        assert_ne!(key.0, hash("secret-token2"));
        cache.insert(key, Decision::Allowed, t0 + Duration::from_secs(60), t0);
        assert_eq!(cache.get(&key, t0 + Duration::from_secs(59)), Some(Decision::Allowed));
        assert_eq!(cache.get(&key, t0 + Duration::from_secs(60)), None);
        assert_eq!(cache.get(&(key.0, Protected::Metrics), t0), None);
        // A zero TTL caches nothing.
        cache.insert((hash("b"), Protected::Report), Decision::Allowed, t0, t0);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_cache_is_bounded_and_drops_what_expires_first() {
        let t0 = Instant::now();
        let mut cache = Cache::new(3);
        for (i, token) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let expires = t0 + Duration::from_secs(100 + i as u64);
            cache.insert((hash(token), Protected::Report), Decision::Unauthenticated, expires, t0);
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(&(hash("a"), Protected::Report), t0), None);
        assert_eq!(
            cache.get(&(hash("e"), Protected::Report), t0),
            Some(Decision::Unauthenticated)
        );
        // Expired entries make room first.
        let later = t0 + Duration::from_secs(103);
        cache.insert(
            (hash("f"), Protected::Report),
            Decision::Allowed,
            later + Duration::from_secs(1),
            later,
        );
        assert_eq!(
            cache.get(&(hash("e"), Protected::Report), later),
            Some(Decision::Unauthenticated)
        );
        assert_eq!(
            cache.get(&(hash("f"), Protected::Report), later),
            Some(Decision::Allowed)
        );
    }
}
