//! Identifiers, parsed once at the edge so the store never sees an unchecked string.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::Error;

const MAX_ID_LEN: usize = 64;

fn check_id(value: &str, what: &str) -> Result<(), Error> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if value.is_empty() || value.len() > MAX_ID_LEN || !value.chars().all(valid_char) {
        return Err(Error::bad_request(format!(
            "invalid {what}: 1 to {MAX_ID_LEN} characters of A-Z, a-z, 0-9, '_' or '-'"
        )));
    }
    Ok(())
}

/// User ids come from identity providers: Cognito's UUIDs, Auth0's `auth0|abc123` and
/// `google-oauth2|123`, Entra's base64url subjects, e-mail addresses.
const MAX_USER_ID_CHARS: usize = 128;

/// Any printable id but `#` (the table's key separator) and `/` or `\` (it is a path segment), and
/// not `.` or `..`, which URLs resolve away.
fn check_user_id(value: &str, what: &str) -> Result<(), Error> {
    let valid_char = |c: char| !c.is_control() && !c.is_whitespace() && !matches!(c, '#' | '/' | '\\');
    let count = value.chars().count();
    if count == 0 || count > MAX_USER_ID_CHARS || !value.chars().all(valid_char) || matches!(value, "." | "..") {
        return Err(Error::bad_request(format!(
            "invalid {what}: 1 to {MAX_USER_ID_CHARS} printable characters, none of them a space, '#', '/' or '\\'"
        )));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        id_type!($(#[$doc])* $name, $what, check_id);
    };
    ($(#[$doc:meta])* $name:ident, $what:literal, $check:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, Error> {
                let value = value.into();
                $check(&value, $what)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self, Error> {
                Self::parse(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(OrgId, "org_id");
id_type!(RoomId, "room_id");
id_type!(InviteId, "invite_id");
id_type!(SubscriptionId, "subscription_id");
id_type!(
    /// A message or a thread reply.
    MessageId,
    "message id"
);
id_type!(
    /// A user: the token's `sub`, a member id, a sender id.
    UserId,
    "user id",
    check_user_id
);

/// A new id that sorts by creation time (a ULID), so a Query on ids pages newest first. Ids made by
/// one process within one millisecond still sort in the order they were made.
pub fn new_id() -> String {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut generator = GENERATOR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let generator = generator.get_or_insert_with(ulid::Generator::new);
    // The generator refuses only when 2^80 ids were made in one millisecond.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new()).to_string()
}

impl OrgId {
    pub fn generate() -> Self {
        Self(new_id())
    }
}

impl RoomId {
    pub fn generate() -> Self {
        Self(new_id())
    }
}

impl MessageId {
    pub fn generate() -> Self {
        Self(new_id())
    }
}

impl InviteId {
    pub fn generate() -> Self {
        Self(new_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_documented_alphabet_and_refuse_the_rest() {
        assert!(RoomId::parse("01J9Z8a_b-C9").is_ok());
        assert!(RoomId::parse("x".repeat(64)).is_ok());
        for bad in ["", "../etc", "a b", "é", "a\0b", "a/b", "a|b", &"x".repeat(65)] {
            assert!(RoomId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn user_ids_of_common_identity_providers_are_accepted() {
        for good in [
            "614e8de3f31a74e068e40qbr",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "auth0|abc123",
            "google-oauth2|104857364758392017465",
            "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "jo.doe+chat@example.com",
            "élodie",
            &"x".repeat(128),
        ] {
            assert!(UserId::parse(good).is_ok(), "{good:?} should be accepted");
        }
        for bad in ["", "a#b", "ORG#x", "a/b", "..", ".", "a b", "a\0b", "a\u{7f}", "a\\b", &"é".repeat(129)] {
            assert!(UserId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn new_ids_sort_by_creation_even_within_a_millisecond() {
        let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
