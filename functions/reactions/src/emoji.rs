//! An emoji as a reaction names it: its characters or its short name, 1 to 64 characters.

use dm_shared::Error;
use serde::Deserialize;

const MAX_EMOJI_CHARS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Emoji(String);

impl TryFrom<String> for Emoji {
    type Error = Error;

    fn try_from(value: String) -> Result<Self, Error> {
        let count = value.chars().count();
        if count == 0 || count > MAX_EMOJI_CHARS || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Error::bad_request(format!(
                "an emoji is 1 to {MAX_EMOJI_CHARS} characters without spaces or control characters"
            )));
        }
        Ok(Self(value))
    }
}

impl Emoji {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_are_short_and_printable() {
        for good in ["👍", ":thumbsup:", "👩‍👩‍👧", "+1"] {
            assert!(Emoji::try_from(good.to_owned()).is_ok(), "{good}");
        }
        for bad in ["", " ", "a b", "\u{0}", &"x".repeat(65)] {
            assert!(Emoji::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }
}
