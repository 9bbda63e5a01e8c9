//! JWT authorization, in the format Mercure hubs use: who may publish to which topics, and
//! which private events a subscriber may see.
//!
//! A token is verified with the key and algorithm the settings give (never the algorithm the
//! token names), its `exp` and `nbf` checked when present, and read for the `mercure.publish`
//! and `mercure.subscribe` claims: lists of topic [`Selectors`]. Tokens and keys are never
//! logged: a key is a [`Secret`], and errors name what is wrong, not the token.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::selector::Selectors;

/// A key as the settings give it: an HMAC secret, or a PEM public key (its text, or the path
/// of a file holding it). Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key given in the settings.
    pub fn new(text: String) -> Self {
        Self(text)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the key file {path}: {reason}")]
    File {
        path: String,
        reason: std::io::Error,
    },
    #[error("the key is not a valid {algorithm:?} key: {reason}")]
    Pem {
        algorithm: Algorithm,
        reason: jsonwebtoken::errors::Error,
    },
    #[error("an HMAC secret must not be empty")]
    EmptySecret,
}

/// Why a token was refused: each answers `401`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a token is required")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature is not valid")]
    BadSignature,
    #[error("the token is signed with another algorithm than this server's")]
    WrongAlgorithm,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not valid")]
    Invalid,
}

/// What a valid token allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Topics it may publish to (`mercure.publish`).
    pub publish: Selectors,
    /// Topics whose private events it may receive (`mercure.subscribe`).
    pub subscribe: Selectors,
    /// When it expires, in seconds since the Unix epoch (`exp`), if it does.
    pub expires: Option<u64>,
}

/// Verifies tokens with one key and algorithm.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// The claims ssecast reads.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    mercure: Mercure,
    exp: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct Mercure {
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
}

impl Verifier {
    /// A verifier for `algorithm` with `key`: the secret for HMAC, else a PEM public key or
    /// the path of a file holding one.
    pub fn new(key: &Secret, algorithm: Algorithm) -> Result<Self, KeyError> {
        let text = &key.0;
        let key = match algorithm {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                if text.is_empty() {
                    return Err(KeyError::EmptySecret);
                }
                DecodingKey::from_secret(text.as_bytes())
                    .map_err(|reason| KeyError::Pem { algorithm, reason })?
            }
            _ => {
                let pem = if text.trim_start().starts_with("-----BEGIN") {
                    text.clone().into_bytes()
                } else {
                    std::fs::read(text).map_err(|reason| KeyError::File {
                        path: text.clone(),
                        reason,
                    })?
                };
                let decoded = match algorithm {
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                    _ => DecodingKey::from_rsa_pem(&pem),
                };
                decoded.map_err(|reason| KeyError::Pem { algorithm, reason })?
            }
        };
        let mut validation = Validation::new(algorithm);
        // Mercure's tokens often carry no `exp`: check it, and `nbf`, only when present.
        validation.required_spec_claims.clear();
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok(Self { key, validation })
    }

    /// The grants of a valid token.
    pub fn verify(&self, token: &str) -> Result<Grants, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::ImmatureSignature => TokenError::NotYetValid,
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenError::WrongAlgorithm
                }
                ErrorKind::InvalidToken
                | ErrorKind::Base64(_)
                | ErrorKind::Json(_)
                | ErrorKind::Utf8(_) => TokenError::Malformed,
                _ => TokenError::Invalid,
            },
        )?;
        let Claims { mercure, exp } = data.claims;
        Ok(Grants {
            publish: Selectors::from_claim(mercure.publish.iter().map(String::as_str)),
            subscribe: Selectors::from_claim(mercure.subscribe.iter().map(String::as_str)),
            expires: exp,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: &[u8]) -> Result<&str, TokenError> {
    let text = std::str::from_utf8(header).map_err(|_| TokenError::Malformed)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(TokenError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(TokenError::Malformed);
    }
    Ok(token.trim())
}

#[cfg(test)]
mod tests {
    use std::time::{SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    use super::*;

    const SECRET: &str = "a secret of some length";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn token(claims: serde_json::Value, secret: &str, algorithm: Algorithm) -> String {
        let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
        encode(&Header::new(algorithm), &claims, &key).unwrap()
    }

    fn verifier() -> Verifier {
        Verifier::new(&Secret::new(SECRET.into()), Algorithm::HS256).unwrap()
    }

    #[test]
    fn a_valid_token_gives_its_selectors() {
        let exp = now() + 60;
        let claims = json!({"mercure": {"publish": ["a", "*"], "subscribe": ["b"]}, "exp": exp});
        let grants = verifier()
            .verify(&token(claims, SECRET, Algorithm::HS256))
            .unwrap();
        assert!(grants.publish.allows("anything"));
        assert!(grants.subscribe.allows("b") && !grants.subscribe.allows("a"));
        assert_eq!(grants.expires, Some(exp));
        let bare = verifier()
            .verify(&token(json!({}), SECRET, Algorithm::HS256))
            .unwrap();
        assert_eq!(bare, Grants::default(), "no mercure claim allows nothing");
    }

    #[test]
    fn bad_tokens_say_why() {
        let verifier = verifier();
        let cases = [
            (
                token(json!({}), "another secret", Algorithm::HS256),
                TokenError::BadSignature,
            ),
            (
                token(json!({}), SECRET, Algorithm::HS512),
                TokenError::WrongAlgorithm,
            ),
            (
                token(json!({"exp": now() - 10}), SECRET, Algorithm::HS256),
                TokenError::Expired,
            ),
            (
                token(json!({"nbf": now() + 60}), SECRET, Algorithm::HS256),
                TokenError::NotYetValid,
            ),
            ("not.a.token".into(), TokenError::Malformed),
            ("nonsense".into(), TokenError::Malformed),
        ];
        for (token, expected) in cases {
            assert_eq!(verifier.verify(&token), Err(expected), "{token}");
        }
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer(b"Bearer abc.def.ghi"), Ok("abc.def.ghi"));
        assert_eq!(bearer(b"bearer  abc "), Ok("abc"));
        assert_eq!(bearer(b"Basic abc"), Err(TokenError::Malformed));
        assert_eq!(bearer(b"Bearer"), Err(TokenError::Malformed));
        assert_eq!(bearer(b"Bearer \xff"), Err(TokenError::Malformed));
    }

    #[test]
    fn keys_are_checked_and_never_shown() {
        assert!(matches!(
            Verifier::new(&Secret::new(String::new()), Algorithm::HS256),
            Err(KeyError::EmptySecret)
        ));
        assert!(matches!(
            Verifier::new(&Secret::new("/nonexistent.pem".into()), Algorithm::RS256),
            Err(KeyError::File { .. })
        ));
        assert_eq!(format!("{:?}", Secret::new(SECRET.into())), "Secret(..)");
    }
}
