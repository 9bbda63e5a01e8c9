//! Subscriber tokens in Mercure's format: making a file of them, and reading one back.
//!
//! A token made here is an HS256 JWT whose `mercure.subscribe` names the run's topics and one
//! topic of its own (`user/<k>`), so every token of a file carries a distinct claim set, as the
//! tokens of distinct users would. A run reads a file once per process into [`Tokens`], shared
//! by its client threads; subscriber `i` sends line `i mod N`. Where a token goes in the request
//! ([`Place`]) is `client::request`'s business; nothing here opens a connection.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Error;

/// Where a subscriber sends its token: Mercure's three places.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// An `Authorization: Bearer <token>` header.
    Header,
    /// An `authorization=<token>` query parameter.
    Query,
    /// A `mercureAuthorization=<token>` cookie.
    Cookie,
}

/// A token file and where its tokens go; sent to worker processes, which read the file
/// themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenFile {
    /// The file, one token a line.
    pub path: PathBuf,
    /// Where subscribers send them.
    pub place: Place,
}

/// The tokens of a file, held once and shared by a process's client threads.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// Never empty: [`Tokens::parse`] refuses a file without a token.
    lines: Arc<[Box<str>]>,
}

impl Tokens {
    /// Reads the tokens of `path`.
    pub fn read(path: &Path) -> Result<Tokens, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        Tokens::parse(&text).map_err(|why| Error::Flag(format!("{}: {why}", path.display())))
    }

    /// The tokens of `text`, one a line; blank lines are skipped. A token must be a Bearer
    /// token (RFC 6750's `b64token`, as a JWT is), so it fits a header, a cookie and a query.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut lines = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let token = line.trim();
            if token.is_empty() {
                continue;
            }
            if !is_b64token(token) {
                return Err(format!("line {} is not a token", number + 1));
            }
            lines.push(Box::from(token));
        }
        if lines.is_empty() {
            return Err("no token".into());
        }
        Ok(Tokens {
            lines: lines.into(),
        })
    }

    /// The token of subscriber `index`: line `index mod N`.
    pub fn get(&self, index: usize) -> &str {
        let at = index % self.lines.len().max(1);
        self.lines.get(at).map_or("", |token| token)
    }
}

/// `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="` (RFC 6750, section 2.1).
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

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

    use super::{make, write, Tokens, LIFETIME};

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

    #[test]
    fn subscriber_i_gets_line_i_mod_n() {
        let tokens = Tokens::parse("a.b.c\r\n\n  d.e.f  \ng\n").unwrap();
        let got: Vec<&str> = (0..7).map(|i| tokens.get(i)).collect();
        assert_eq!(got, ["a.b.c", "d.e.f", "g", "a.b.c", "d.e.f", "g", "a.b.c"]);
    }

    #[test]
    fn a_file_without_tokens_or_with_a_non_token_is_refused() {
        assert_eq!(Tokens::parse("\n \n").unwrap_err(), "no token");
        assert_eq!(
            Tokens::parse("a.b.c\nx y\n").unwrap_err(),
            "line 2 is not a token"
        );
        for bad in ["a;b", "a\"b", "a,b", "==", "a=b", "é"] {
            assert!(Tokens::parse(bad).is_err(), "{bad}");
        }
        assert!(Tokens::parse("aZ0-._~+/==").is_ok());
    }

    #[test]
    fn written_tokens_read_back() {
        let made = make(b"s3cret", 3, &["load".to_owned()], SystemTime::now()).unwrap();
        let path = std::env::temp_dir().join(format!("loadtest-tokens-{}.txt", std::process::id()));
        write(&path, &made).unwrap();
        let tokens = Tokens::read(&path);
        let _ = std::fs::remove_file(&path);
        let tokens = tokens.unwrap();
        let got: Vec<&str> = (0..4).map(|i| tokens.get(i)).collect();
        assert_eq!(got, [&made[0], &made[1], &made[2], &made[0]]);
    }
}
