//! Subscriber tokens in Mercure's format: making a file of them for the `tokens` command.
//!
//! A token is an HS256 JWT whose `mercure.subscribe` names the run's topics and one topic of
//! its own (`user/<k>`), so every token of a file carries a distinct claim set, as the tokens
//! of distinct users would. Nothing here opens a connection.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::error::Error;

/// How long a token made now stays valid (its `exp`).
pub const LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Makes `count` HS256 tokens signed with `secret`, the `k`th allowed to subscribe to
/// `topics` and `user/<k>`, and expiring [`LIFETIME`] after `now`.
pub fn make(
    secret: &[u8],
    count: usize,
    topics: &[String],
    now: SystemTime,
) -> Result<Vec<String>, Error> {
    let exp = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(LIFETIME)
        .as_secs();
    let header = Header::new(Algorithm::HS256);
    let key = EncodingKey::from_secret(secret).map_err(Error::Token)?;
    (0..count)
        .map(|k| {
            let mut subscribe: Vec<String> = topics.to_vec();
            subscribe.push(format!("user/{k}"));
            let claims = json!({
                "mercure": { "subscribe": subscribe, "publish": [] },
                "exp": exp,
            });
            jsonwebtoken::encode(&header, &claims, &key).map_err(Error::Token)
        })
        .collect()
}

/// Writes `tokens` to `path`, one a line.
pub fn write(path: &Path, tokens: &[String]) -> Result<(), Error> {
    let what = || format!("writing {}", path.display());
    let file = std::fs::File::create(path).map_err(Error::io(what()))?;
    let mut out = std::io::BufWriter::new(file);
    for token in tokens {
        writeln!(out, "{token}").map_err(Error::io(what()))?;
    }
    out.flush().map_err(Error::io(what()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::{Duration, SystemTime};

    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use serde::Deserialize;

    use super::{make, LIFETIME};

    #[derive(Debug, Deserialize)]
    struct Claims {
        mercure: Mercure,
        exp: u64,
    }

    #[derive(Debug, Deserialize)]
    struct Mercure {
        subscribe: Vec<String>,
        publish: Vec<String>,
    }

    #[test]
    fn made_tokens_decode_with_the_secret_and_are_distinct() {
        let now = SystemTime::now();
        let topics = vec!["load".to_owned()];
        let tokens = make(b"s3cret", 50, &topics, now).unwrap();
        assert_eq!(tokens.len(), 50);
        assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), 50);
        let key = DecodingKey::from_secret(b"s3cret").unwrap();
        let validation = Validation::new(Algorithm::HS256);
        let expected_exp = (now + LIFETIME)
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for (k, token) in tokens.iter().enumerate() {
            let claims = jsonwebtoken::decode::<Claims>(token, &key, &validation)
                .unwrap()
                .claims;
            assert_eq!(
                claims.mercure.subscribe,
                ["load".to_owned(), format!("user/{k}")]
            );
            assert!(claims.mercure.publish.is_empty());
            assert_eq!(claims.exp, expected_exp);
        }
    }

    #[test]
    fn made_tokens_do_not_decode_with_another_secret() {
        let tokens = make(b"s3cret", 1, &["load".to_owned()], SystemTime::now()).unwrap();
        let key = DecodingKey::from_secret(b"other").unwrap();
        let validation = Validation::new(Algorithm::HS256);
        assert!(jsonwebtoken::decode::<Claims>(&tokens[0], &key, &validation).is_err());
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert!(make(b"", 1, &["load".to_owned()], SystemTime::now()).is_err());
    }

    #[test]
    fn made_tokens_expire_a_day_after_now() {
        let past = SystemTime::now() - LIFETIME - Duration::from_secs(3600);
        let tokens = make(b"s3cret", 1, &["load".to_owned()], past).unwrap();
        let key = DecodingKey::from_secret(b"s3cret").unwrap();
        let validation = Validation::new(Algorithm::HS256);
        assert!(jsonwebtoken::decode::<Claims>(&tokens[0], &key, &validation).is_err());
    }
}
