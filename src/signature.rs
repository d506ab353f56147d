//! Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
//!
//! The runner verifies (on the raw body, before any JSON parsing); the
//! emulator and `coderunner invoke` sign. Secrets are `whsec_<base64>`;
//! several can be configured at once so that a secret can be rotated.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying the unique message id.
pub const ID_HEADER: &str = "webhook-id";
/// Header carrying the send time in seconds since the epoch.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Header carrying one or more space-separated `v1,<base64>` signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// How far a timestamp may be from now, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// The longest accepted `webhook-id`, in bytes: ids are remembered for the
/// replay window, so their size is bounded.
pub const MAX_ID_BYTES: usize = 256;

const PREFIX: &str = "whsec_";

/// A webhook signing secret. `Debug` never shows the key.
///
/// Held as the HMAC state already keyed with it, so that signing or
/// checking a task hashes only the message.
#[derive(Clone)]
pub struct WebhookSecret(HmacSha256);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// Why a secret or a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A configured secret is not `whsec_<base64>`.
    #[error("webhook secret must be `whsec_` followed by base64 of at least 16 bytes")]
    BadSecret,
    /// A required header is absent.
    #[error("missing header `{0}`")]
    MissingHeader(&'static str),
    /// `webhook-id` is longer than [`MAX_ID_BYTES`].
    #[error("header `webhook-id` is longer than {MAX_ID_BYTES} bytes")]
    IdTooLong,
    /// The timestamp header is not an integer.
    #[error("header `webhook-timestamp` is not a number of seconds")]
    BadTimestamp,
    /// The timestamp is older or newer than the tolerance allows.
    #[error("header `webhook-timestamp` is outside the {0}-second tolerance")]
    StaleTimestamp(u64),
    /// No signature matched any configured secret.
    #[error("no matching signature in header `webhook-signature`")]
    NoMatch,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`.
    pub fn parse(secret: &str) -> Result<Self, SignatureError> {
        let encoded = secret
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SignatureError::BadSecret)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SignatureError::BadSecret)?;
        if key.len() < 16 {
            return Err(SignatureError::BadSecret);
        }
        let keyed = HmacSha256::new_from_slice(&key).expect("HMAC takes keys of any length");
        Ok(Self(keyed))
    }

    /// A new random secret, in its `whsec_` form.
    pub fn generate() -> String {
        let key: [u8; 32] = rand::random();
        format!("{PREFIX}{}", STANDARD.encode(key))
    }

    fn mac(&self, id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = self.0.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `v1,<base64>` signature of a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = self
            .mac(id, &timestamp.to_string(), body)
            .finalize()
            .into_bytes();
        format!("v1,{}", STANDARD.encode(tag))
    }

    /// The three headers of a freshly signed message (new id, current time).
    pub fn sign_headers(&self, body: &[u8]) -> [(&'static str, String); 3] {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let ts = unix_now();
        let sig = self.sign(&id, ts, body);
        [
            (ID_HEADER, id),
            (TIMESTAMP_HEADER, ts.to_string()),
            (SIGNATURE_HEADER, sig),
        ]
    }
}

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Checks signed requests against one or more secrets.
#[derive(Debug, Clone)]
pub struct Verifier {
    secrets: Vec<WebhookSecret>,
    tolerance: Duration,
}

/// The signature headers of a request that passed [`Verifier::check_headers`]:
/// present, an id of bounded size, a timestamp within the tolerance. The
/// signature itself is not checked yet (the body has not been read).
#[derive(Debug, Clone, Copy)]
pub struct CheckedHeaders<'a> {
    /// `webhook-id`.
    pub id: &'a str,
    /// `webhook-timestamp`, seconds since the epoch, as signed.
    pub timestamp: i64,
    /// `webhook-timestamp` as received (the signed text).
    timestamp_raw: &'a str,
    /// `webhook-signature`.
    signatures: &'a str,
}

/// The signature headers of one request, as received.
#[derive(Debug, Clone, Copy)]
pub struct SignedHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
}

impl Verifier {
    /// A verifier accepting any of `secrets`.
    pub fn new(secrets: Vec<WebhookSecret>, tolerance: Duration) -> Self {
        Self { secrets, tolerance }
    }

    /// The timestamp tolerance.
    pub fn tolerance(&self) -> Duration {
        self.tolerance
    }

    /// Checks what can be checked before the body is read: the three
    /// headers are present, the id is at most [`MAX_ID_BYTES`] and the
    /// timestamp is within the tolerance of `now` (seconds since the epoch).
    pub fn check_headers<'a>(
        &self,
        headers: SignedHeaders<'a>,
        now: i64,
    ) -> Result<CheckedHeaders<'a>, SignatureError> {
        let id = headers
            .id
            .filter(|s| !s.is_empty())
            .ok_or(SignatureError::MissingHeader(ID_HEADER))?;
        if id.len() > MAX_ID_BYTES {
            return Err(SignatureError::IdTooLong);
        }
        let timestamp_raw = headers
            .timestamp
            .ok_or(SignatureError::MissingHeader(TIMESTAMP_HEADER))?
            .trim();
        let signatures = headers
            .signature
            .ok_or(SignatureError::MissingHeader(SIGNATURE_HEADER))?;
        let timestamp: i64 = timestamp_raw
            .parse()
            .map_err(|_| SignatureError::BadTimestamp)?;
        let tolerance = self.tolerance.as_secs();
        if now.abs_diff(timestamp) > tolerance {
            return Err(SignatureError::StaleTimestamp(tolerance));
        }
        Ok(CheckedHeaders {
            id,
            timestamp,
            timestamp_raw,
            signatures,
        })
    }

    /// Checks the signature of checked headers over `body`. The comparison
    /// is constant-time.
    pub fn verify_body(
        &self,
        headers: &CheckedHeaders<'_>,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        for secret in &self.secrets {
            let mac = secret.mac(headers.id, headers.timestamp_raw, body);
            let candidates = headers
                .signatures
                .split_ascii_whitespace()
                .filter_map(|s| s.strip_prefix("v1,"));
            for b64 in candidates {
                // A v1 signature is 32 bytes; anything longer cannot match,
                // and decoding into the stack allocates nothing.
                let mut decoded = [0u8; 64];
                let Ok(len) = STANDARD.decode_slice(b64, &mut decoded) else {
                    continue;
                };
                if mac.clone().verify_slice(&decoded[..len]).is_ok() {
                    return Ok(());
                }
            }
        }
        Err(SignatureError::NoMatch)
    }

    /// Verifies a request at time `now` (seconds since the epoch) and
    /// returns its message id: [`Verifier::check_headers`] then
    /// [`Verifier::verify_body`].
    pub fn verify<'a>(
        &self,
        headers: SignedHeaders<'a>,
        body: &[u8],
        now: i64,
    ) -> Result<&'a str, SignatureError> {
        let checked = self.check_headers(headers, now)?;
        self.verify_body(&checked, body)?;
        Ok(checked.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> (String, WebhookSecret) {
        let text = format!("whsec_{}", STANDARD.encode([byte; 32]));
        let parsed = WebhookSecret::parse(&text).unwrap();
        (text, parsed)
    }

    fn headers<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> SignedHeaders<'a> {
        SignedHeaders {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
        }
    }

    #[test]
    fn accepts_own_signature_and_rotated_secrets() {
        let (_, old) = secret(1);
        let (_, new) = secret(2);
        let body = br#"{"a":1}"#;
        let sig = new.sign("msg_1", 1000, body);
        let verifier = Verifier::new(vec![old.clone(), new], DEFAULT_TOLERANCE);
        assert_eq!(
            verifier.verify(headers("msg_1", "1000", &sig), body, 1000),
            Ok("msg_1")
        );
        let both = format!("v1,AAAA {sig}");
        assert!(
            verifier
                .verify(headers("msg_1", "1000", &both), body, 1100)
                .is_ok()
        );
        let only_old = Verifier::new(vec![old], DEFAULT_TOLERANCE);
        assert_eq!(
            only_old.verify(headers("msg_1", "1000", &sig), body, 1000),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn refuses_tampering_and_stale_timestamps() {
        let (_, s) = secret(3);
        let v = Verifier::new(vec![s.clone()], DEFAULT_TOLERANCE);
        let sig = s.sign("m", 1000, b"body");
        assert_eq!(
            v.verify(headers("m", "1000", &sig), b"bodx", 1000),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            v.verify(headers("n", "1000", &sig), b"body", 1000),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            v.verify(headers("m", "1000", &sig), b"body", 1301),
            Err(SignatureError::StaleTimestamp(300))
        );
        assert_eq!(
            v.verify(headers("m", "1000", &sig), b"body", 699),
            Err(SignatureError::StaleTimestamp(300))
        );
        assert_eq!(
            v.verify(headers("m", "x", &sig), b"body", 1000),
            Err(SignatureError::BadTimestamp)
        );
        let missing = SignedHeaders {
            id: None,
            timestamp: Some("1"),
            signature: Some("v1,x"),
        };
        assert_eq!(
            v.verify(missing, b"", 1),
            Err(SignatureError::MissingHeader(ID_HEADER))
        );
        let long = "i".repeat(MAX_ID_BYTES + 1);
        let sig = s.sign(&long, 1000, b"body");
        assert_eq!(
            v.verify(headers(&long, "1000", &sig), b"body", 1000),
            Err(SignatureError::IdTooLong)
        );
        let longest = "i".repeat(MAX_ID_BYTES);
        let sig = s.sign(&longest, 1000, b"body");
        assert!(
            v.verify(headers(&longest, "1000", &sig), b"body", 1000)
                .is_ok()
        );
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        assert_eq!(
            WebhookSecret::parse("hunter2").unwrap_err(),
            SignatureError::BadSecret
        );
        assert_eq!(
            WebhookSecret::parse("whsec_!!").unwrap_err(),
            SignatureError::BadSecret
        );
        let (text, s) = secret(9);
        assert!(!format!("{s:?}").contains(&text[6..]));
        assert!(WebhookSecret::parse(&WebhookSecret::generate()).is_ok());
    }
}
