//! Cross-origin access: which page origins may read ssecast's answers, and with credentials.
//!
//! `--cors-origin` lists origins; a request from a listed origin gets it back in
//! `Access-Control-Allow-Origin` with `Access-Control-Allow-Credentials: true`, so that a page
//! on another origin can send the `mercureAuthorization` cookie. `*` allows every origin but
//! never credentials (browsers refuse the two together).

use hyper::header::HeaderValue;

/// The origins allowed, as the settings give them.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    /// `*` was given: every origin, without credentials.
    any: bool,
    /// The origins listed, with credentials.
    origins: Vec<HeaderValue>,
}

/// What an allowed request's answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    /// `Access-Control-Allow-Origin`.
    pub origin: HeaderValue,
    /// Whether `Access-Control-Allow-Credentials: true` goes with it.
    pub credentials: bool,
}

impl Cors {
    /// The origins of `--cors-origin` (each checked by the settings).
    pub fn new(origins: &[String]) -> Self {
        Self {
            any: origins.iter().any(|origin| origin == "*"),
            origins: origins
                .iter()
                .filter(|origin| *origin != "*")
                .filter_map(|origin| HeaderValue::from_str(origin).ok())
                .collect(),
        }
    }

    /// Whether any origin is allowed at all.
    pub fn is_on(&self) -> bool {
        self.any || !self.origins.is_empty()
    }

    /// What to answer a request from `origin` (its `Origin` header), if it is allowed.
    pub fn allow(&self, origin: Option<&[u8]>) -> Option<Allowed> {
        let listed = origin.and_then(|origin| {
            self.origins
                .iter()
                .find(|allowed| allowed.as_bytes() == origin)
        });
        match listed {
            Some(origin) => Some(Allowed {
                origin: origin.clone(),
                credentials: true,
            }),
            None if self.any => Some(Allowed {
                origin: HeaderValue::from_static("*"),
                credentials: false,
            }),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str]) -> Cors {
        Cors::new(&origins.iter().map(|o| o.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn listed_origins_get_credentials_and_the_wildcard_never_does() {
        let listed = cors(&["https://app.example", "https://admin.example"]);
        let allowed = listed.allow(Some(b"https://admin.example")).unwrap();
        assert_eq!(allowed.origin, "https://admin.example");
        assert!(allowed.credentials);
        assert_eq!(listed.allow(Some(b"https://evil.example")), None);
        assert_eq!(listed.allow(None), None);
        let any = cors(&["*"]);
        let allowed = any.allow(Some(b"https://evil.example")).unwrap();
        assert_eq!(
            (allowed.origin.to_str().unwrap(), allowed.credentials),
            ("*", false)
        );
        let both = cors(&["*", "https://app.example"]);
        assert!(
            both.allow(Some(b"https://app.example"))
                .unwrap()
                .credentials
        );
        assert!(
            !both
                .allow(Some(b"https://other.example"))
                .unwrap()
                .credentials
        );
        assert!(!cors(&[]).is_on());
    }
}
