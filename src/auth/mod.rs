//! JWT authorization, in the formats Mercure hubs use: who may publish to which topics, and
//! which private events a subscriber may see.
//!
//! A token is verified with the key and algorithm the settings give (never the algorithm the
//! token names), its `exp` and `nbf` checked when present, then read by its header's `typ`. An
//! RFC 9068 access token (`at+jwt`, Mercure 1.0) must have an `exp`, and an `iss` and `aud`
//! naming what the settings [`Expected`]; its `authorization_details` say what it allows. Any
//! other token is read as Mercure 0.x's, by its `mercure` claim, its `iss` and `aud` not looked
//! at. Both give the same [`Grants`] (see `claims`). Tokens and keys are never logged: a key is
//! a [`Secret`], and errors name what is wrong, not the token.

mod claims;

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use self::claims::{DetailError, MAX_GRANTED_TOPICS, MERCURE_DETAIL};
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

/// Why a token was refused: `Missing` and `BadHeader` are about how it was presented, the
/// others about the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a token is required")]
    Missing,
    #[error("expected one Authorization header: Bearer and a token")]
    BadHeader,
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
    #[error("an access token (typ at+jwt) must have an exp")]
    NoExpiry,
    #[error("the token's iss is not the issuer this server trusts")]
    WrongIssuer,
    #[error("the token's aud does not name this server")]
    WrongAudience,
    #[error("the token's authorization_details: {0}")]
    Details(#[from] DetailError),
    #[error("the token is not valid")]
    Invalid,
}

/// What a valid token allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Topics it may publish to (`mercure.publish`, or the `publish` action).
    pub publish: Selectors,
    /// Topics whose private events it may receive (`mercure.subscribe`, or the `subscribe`
    /// action).
    pub subscribe: Selectors,
    /// When it expires, in seconds since the Unix epoch (`exp`), if it does.
    pub expires: Option<u64>,
    /// A 0.x token's `mercure.payload`, the raw JSON the token holds, if any: what Mercure's
    /// subscription events tell of the subscriber.
    pub payload: Option<Box<str>>,
}

/// What a Mercure 1.0 access token must name, besides a valid signature and an `exp`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Its `iss`, exactly; any when `None`.
    pub issuer: Option<String>,
    /// A member of its `aud` (a string or a list of strings); any when `None`.
    pub audience: Option<String>,
}

/// Verifies tokens with one key and algorithm.
pub struct Verifier {
    key: DecodingKey,
    /// The algorithm, and `exp` and `nbf` when present: what both formats share.
    validation: Validation,
    /// What a 1.0 access token must name besides.
    expected: Expected,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("algorithms", &self.validation.algorithms)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for `algorithm` with `key` (the secret for HMAC, else a PEM public key or
    /// the path of a file holding one), whose 1.0 access tokens must name what is `expected`.
    pub fn new(key: &Secret, algorithm: Algorithm, expected: Expected) -> Result<Self, KeyError> {
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
        // Mercure 0.x tokens often carry no `exp`: check it, and `nbf`, only when present.
        // What a 1.0 token must carry besides, `verify` checks on its claims.
        validation.required_spec_claims.clear();
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok(Self {
            key,
            validation,
            expected,
        })
    }

    /// The grants of a valid token, read in Mercure 1.0's way if it is an access token, else
    /// in 0.x's.
    pub fn verify(&self, token: &str) -> Result<Grants, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(refused)?;
        if !is_access_token(header.typ.as_deref()) {
            return Ok(self.decode::<claims::Legacy>(token)?.grants());
        }
        let claims = self.decode::<claims::Access>(token)?;
        if claims.exp.is_none() {
            return Err(TokenError::NoExpiry);
        }
        if let Some(issuer) = &self.expected.issuer {
            if claims.iss.as_ref().and_then(Value::as_str) != Some(issuer) {
                return Err(TokenError::WrongIssuer);
            }
        }
        if let Some(audience) = &self.expected.audience {
            let named = match &claims.aud {
                Some(Value::String(aud)) => aud == audience,
                Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
                _ => false,
            };
            if !named {
                return Err(TokenError::WrongAudience);
            }
        }
        Ok(claims.grants()?)
    }

    /// The claims of a token whose signature, algorithm, `exp` and `nbf` are valid.
    fn decode<T: DeserializeOwned>(&self, token: &str) -> Result<T, TokenError> {
        jsonwebtoken::decode::<T>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(refused)
    }
}

/// What a token `jsonwebtoken` refused is told.
fn refused(error: jsonwebtoken::errors::Error) -> TokenError {
    match error.kind() {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::WrongAlgorithm,
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => TokenError::Malformed,
        _ => TokenError::Invalid,
    }
}

/// Whether a header's `typ` makes the token an RFC 9068 access token: `at+jwt`, or
/// `application/at+jwt`, in any case (RFC 7515 section 4.1.9).
fn is_access_token(typ: Option<&str>) -> bool {
    const MEDIA_TYPE: &str = "application/";
    let Some(mut typ) = typ else {
        return false;
    };
    if typ
        .get(..MEDIA_TYPE.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(MEDIA_TYPE))
    {
        typ = &typ[MEDIA_TYPE.len()..];
    }
    typ.eq_ignore_ascii_case("at+jwt")
}

/// The token of an `Authorization: Bearer <token>` header value.
pub fn bearer(header: &[u8]) -> Result<&str, TokenError> {
    let text = std::str::from_utf8(header).map_err(|_| TokenError::BadHeader)?;
    let (scheme, token) = text.trim().split_once(' ').ok_or(TokenError::BadHeader)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(TokenError::BadHeader);
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
    const ISSUER: &str = "https://example.com";
    const AUDIENCE: &str = "https://hub.example.com/.well-known/mercure";

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

    /// A token whose header's `typ` is `typ`, signed with HS256 and [`SECRET`].
    fn typed(typ: &str, claims: serde_json::Value) -> String {
        let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
        let header = Header {
            typ: Some(typ.into()),
            ..Header::new(Algorithm::HS256)
        };
        encode(&header, &claims, &key).unwrap()
    }

    fn verifier() -> Verifier {
        Verifier::new(
            &Secret::new(SECRET.into()),
            Algorithm::HS256,
            Expected::default(),
        )
        .unwrap()
    }

    fn expecting(issuer: Option<&str>, audience: Option<&str>) -> Verifier {
        let expected = Expected {
            issuer: issuer.map(Into::into),
            audience: audience.map(Into::into),
        };
        Verifier::new(&Secret::new(SECRET.into()), Algorithm::HS256, expected).unwrap()
    }

    /// 1.0 claims granting `actions` on the exact topic `t`, expiring in a minute.
    fn access(actions: &[&str]) -> serde_json::Value {
        json!({
            "exp": now() + 60,
            "authorization_details": [
                {"type": MERCURE_DETAIL, "actions": actions, "topics": [{"match": "t"}]},
            ],
        })
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
        assert_eq!(grants.payload, None);
        let claims = json!({"mercure": {"payload": {"user": "https://example.com/users/1"}}});
        let with_payload = verifier()
            .verify(&token(claims, SECRET, Algorithm::HS256))
            .unwrap();
        assert_eq!(
            with_payload.payload.as_deref(),
            Some(r#"{"user":"https://example.com/users/1"}"#)
        );
        let bare = verifier()
            .verify(&token(json!({}), SECRET, Algorithm::HS256))
            .unwrap();
        assert_eq!(bare, Grants::default(), "no mercure claim allows nothing");
    }

    #[test]
    fn typ_says_which_format_a_token_is_read_in() {
        let verifier = verifier();
        let both = json!({
            "exp": now() + 60,
            "mercure": {"subscribe": ["legacy"]},
            "authorization_details": [
                {"type": MERCURE_DETAIL, "actions": ["subscribe"], "topics": [{"match": "new"}]},
            ],
        });
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+Jwt",
        ] {
            let grants = verifier.verify(&typed(typ, both.clone())).unwrap();
            assert!(grants.subscribe.allows("new"), "{typ}");
            assert!(!grants.subscribe.allows("legacy"), "{typ}");
        }
        for typ in ["JWT", "jwt", "application/jwt", "at+jwt+x", "application/"] {
            let grants = verifier.verify(&typed(typ, both.clone())).unwrap();
            assert!(grants.subscribe.allows("legacy"), "{typ}");
            assert!(!grants.subscribe.allows("new"), "{typ}");
        }
        let untyped = Header {
            typ: None,
            ..Header::new(Algorithm::HS256)
        };
        let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
        let grants = verifier
            .verify(&encode(&untyped, &both, &key).unwrap())
            .unwrap();
        assert!(grants.subscribe.allows("legacy"));
    }

    #[test]
    fn an_access_token_needs_an_exp() {
        let verifier = verifier();
        let grants = verifier.verify(&typed("at+jwt", access(&["publish"])));
        assert!(grants.unwrap().publish.allows("t"));
        let mut endless = access(&["publish"]);
        endless.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            verifier.verify(&typed("at+jwt", endless.clone())),
            Err(TokenError::NoExpiry)
        );
        assert!(
            verifier.verify(&typed("JWT", endless)).is_ok(),
            "0.x: optional"
        );
        let mut expired = access(&["publish"]);
        expired["exp"] = json!(now() - 10);
        assert_eq!(
            verifier.verify(&typed("at+jwt", expired)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn an_access_token_names_the_expected_issuer_and_audience() {
        let claims = |iss: serde_json::Value, aud: serde_json::Value| {
            let mut claims = access(&["subscribe"]);
            claims["iss"] = iss;
            claims["aud"] = aud;
            typed("at+jwt", claims)
        };
        let strict = expecting(Some(ISSUER), Some(AUDIENCE));
        let cases = [
            (json!(ISSUER), json!(AUDIENCE), Ok(())),
            (json!(ISSUER), json!(["other", AUDIENCE]), Ok(())),
            (
                json!(ISSUER),
                json!("other"),
                Err(TokenError::WrongAudience),
            ),
            (
                json!(ISSUER),
                json!(["other"]),
                Err(TokenError::WrongAudience),
            ),
            (json!(ISSUER), json!([]), Err(TokenError::WrongAudience)),
            (json!(ISSUER), json!(null), Err(TokenError::WrongAudience)),
            (json!(ISSUER), json!(5), Err(TokenError::WrongAudience)),
            (
                json!("https://evil.example"),
                json!(AUDIENCE),
                Err(TokenError::WrongIssuer),
            ),
            (
                json!([ISSUER]),
                json!(AUDIENCE),
                Err(TokenError::WrongIssuer),
            ),
            (json!(null), json!(AUDIENCE), Err(TokenError::WrongIssuer)),
        ];
        for (iss, aud, expected) in cases {
            let verified = strict.verify(&claims(iss.clone(), aud.clone())).map(|_| ());
            assert_eq!(verified, expected, "iss {iss}, aud {aud}");
        }
        // Unset, either is not looked at.
        let any = claims(json!("anyone"), json!("anything"));
        assert!(expecting(None, None).verify(&any).is_ok());
        let issuer_only = expecting(Some(ISSUER), None);
        assert!(issuer_only.verify(&claims(json!(ISSUER), json!(5))).is_ok());
        // A 0.x token carries neither.
        let legacy = token(
            json!({"mercure": {"subscribe": ["t"]}}),
            SECRET,
            Algorithm::HS256,
        );
        assert!(strict.verify(&legacy).unwrap().subscribe.allows("t"));
    }

    #[test]
    fn malformed_details_refuse_an_access_token() {
        let mut claims = access(&["subscribe"]);
        claims["authorization_details"][0]["topics"][0]["match_type"] = json!("regexp");
        assert_eq!(
            verifier().verify(&typed("at+jwt", claims)),
            Err(TokenError::Details(DetailError::MatchType))
        );
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
            (
                typed("at+jwt", json!({"exp": now() + 60, "nbf": now() + 60})),
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
        assert_eq!(bearer(b"Basic abc"), Err(TokenError::BadHeader));
        assert_eq!(bearer(b"Bearer"), Err(TokenError::BadHeader));
        assert_eq!(bearer(b"Bearer \xff"), Err(TokenError::BadHeader));
    }

    #[test]
    fn keys_are_checked_and_never_shown() {
        assert!(matches!(
            Verifier::new(
                &Secret::new(String::new()),
                Algorithm::HS256,
                Expected::default()
            ),
            Err(KeyError::EmptySecret)
        ));
        assert!(matches!(
            Verifier::new(
                &Secret::new("/nonexistent.pem".into()),
                Algorithm::RS256,
                Expected::default()
            ),
            Err(KeyError::File { .. })
        ));
        assert_eq!(format!("{:?}", Secret::new(SECRET.into())), "Secret(..)");
    }
}
