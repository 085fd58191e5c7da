//! `Authorization: Basic` credentials as registry clients send them.
//!
//! Owns: decoding the header value into a username and a password, and recognising what kind
//! of username it is: ACR's null GUID (`00000000-0000-0000-0000-000000000000`, "the password
//! is an ACR refresh token"), another GUID (a service principal's app id), or a name (admin
//! user = registry name, repository token name).
//! Must never: check the password (the server looks the credential up and calls
//! [`crate::secret::verify_secret`] or validates the refresh token), or print it.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose::STANDARD};
use uuid::Uuid;

use crate::error::BasicError;

/// The username `az acr login` / `docker login` use with an ACR refresh token as password.
pub const NULL_GUID_USERNAME: &str = "00000000-0000-0000-0000-000000000000";

/// Standard base64 that accepts the value with or without its `=` padding.
const LENIENT_STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decoded Basic credentials. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// What a Basic username stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasicUsername<'a> {
    /// The null GUID: the password is an ACR refresh token.
    RefreshToken,
    /// A GUID: a service principal's app (client) id.
    AppId(Uuid),
    /// Any other name: a registry admin user or a repository-scoped token.
    Name(&'a str),
}

impl BasicCredentials {
    /// What the username stands for. GUIDs are recognised in their hyphenated form, in any case.
    pub fn username_kind(&self) -> BasicUsername<'_> {
        let looks_like_guid = self.username.len() == 36 && self.username.as_bytes().get(8) == Some(&b'-');
        match Uuid::try_parse(&self.username) {
            Ok(u) if looks_like_guid && u.is_nil() => BasicUsername::RefreshToken,
            Ok(u) if looks_like_guid => BasicUsername::AppId(u),
            _ => BasicUsername::Name(&self.username),
        }
    }

    /// True when the password is an ACR refresh token (username = null GUID).
    pub fn is_refresh_token(&self) -> bool {
        self.username_kind() == BasicUsername::RefreshToken
    }

    /// The header value for these credentials (`Basic base64(user:password)`), for clients and
    /// tests.
    pub fn to_header_value(&self) -> String {
        format!("Basic {}", STANDARD.encode(format!("{}:{}", self.username, self.password)))
    }
}

/// Parses an `Authorization` header value `Basic <base64(username:password)>`. The scheme is
/// case-insensitive; the password is everything after the first `:` and may contain `:`.
pub fn parse_basic_authorization(value: &str) -> Result<BasicCredentials, BasicError> {
    let value = value.trim();
    let (scheme, encoded) = value.split_once(' ').ok_or(BasicError::NotBasic)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicError::NotBasic);
    }
    let decoded = LENIENT_STANDARD.decode(encoded.trim()).map_err(|_| BasicError::Base64)?;
    let text = String::from_utf8(decoded).map_err(|_| BasicError::Utf8)?;
    if text.chars().any(char::is_control) {
        return Err(BasicError::ControlCharacter);
    }
    let (username, password) = text.split_once(':').ok_or(BasicError::NoSeparator)?;
    if username.is_empty() {
        return Err(BasicError::EmptyUsername);
    }
    Ok(BasicCredentials { username: username.to_owned(), password: password.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    #[test]
    fn parses_username_and_password_with_colons() {
        let c = parse_basic_authorization(&header("myregistry:pa:ss:word")).unwrap();
        assert_eq!(c.username, "myregistry");
        assert_eq!(c.password, "pa:ss:word");
        assert_eq!(c.username_kind(), BasicUsername::Name("myregistry"));
        let empty_pw = parse_basic_authorization(&header("u:")).unwrap();
        assert_eq!(empty_pw.password, "");
    }

    #[test]
    fn scheme_is_case_insensitive_and_padding_optional() {
        let encoded = STANDARD.encode("ab:c");
        assert!(encoded.ends_with('='));
        for v in [
            format!("basic {encoded}"),
            format!("BASIC  {encoded}"),
            format!("Basic {}", encoded.trim_end_matches('=')),
        ] {
            let c = parse_basic_authorization(&v).unwrap();
            assert_eq!((c.username.as_str(), c.password.as_str()), ("ab", "c"));
        }
    }

    #[test]
    fn recognises_guid_usernames() {
        let c = parse_basic_authorization(&header(&format!("{NULL_GUID_USERNAME}:eyJhbGciOi.x.y"))).unwrap();
        assert!(c.is_refresh_token());
        assert_eq!(c.password, "eyJhbGciOi.x.y");
        let app = "6A1F0C2D-1111-4000-8000-000000000002";
        let c = parse_basic_authorization(&header(&format!("{app}:secret"))).unwrap();
        assert_eq!(c.username_kind(), BasicUsername::AppId(Uuid::parse_str(app).unwrap()));
        assert!(!c.is_refresh_token());
        // Other GUID spellings are not app ids: only the hyphenated form counts.
        let c = parse_basic_authorization(&header("00000000000000000000000000000000:x")).unwrap();
        assert_eq!(c.username_kind(), BasicUsername::Name("00000000000000000000000000000000"));
    }

    #[test]
    fn rejects_malformed_values() {
        assert_eq!(parse_basic_authorization("Bearer abc").unwrap_err(), BasicError::NotBasic);
        assert_eq!(parse_basic_authorization("Basic").unwrap_err(), BasicError::NotBasic);
        assert_eq!(parse_basic_authorization("Basic !!!").unwrap_err(), BasicError::Base64);
        assert_eq!(
            parse_basic_authorization(&format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':']))).unwrap_err(),
            BasicError::Utf8
        );
        assert_eq!(parse_basic_authorization(&header("nocolon")).unwrap_err(), BasicError::NoSeparator);
        assert_eq!(parse_basic_authorization(&header(":pw")).unwrap_err(), BasicError::EmptyUsername);
        assert_eq!(parse_basic_authorization(&header("u:p\nw")).unwrap_err(), BasicError::ControlCharacter);
    }

    #[test]
    fn header_round_trip_and_redacted_debug() {
        let c = BasicCredentials { username: "tok1".into(), password: "p:w".into() };
        assert_eq!(parse_basic_authorization(&c.to_header_value()).unwrap(), c);
        assert!(!format!("{c:?}").contains("p:w"));
    }
}
