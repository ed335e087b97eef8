//! The local stack's VAPID key pair (RFC 8292), made once into its data folder, as a deployer keeps
//! theirs in SSM Parameter Store: the private key signs pushes, the public key is what browsers
//! subscribe with.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::elliptic_curve::sec1::ToEncodedPoint;
use serde::{Deserialize, Serialize};

use crate::BoxError;

/// Both keys, base64url: the private scalar (32 bytes) and the uncompressed public point (65 bytes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Vapid {
    pub private_key: String,
    pub public_key: String,
}

impl Vapid {
    /// A new key pair from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, BoxError> {
        let secret = loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|err| err.to_string())?;
            // A scalar at or past the curve's order (odds 2^-32) is drawn again.
            if let Ok(secret) = p256::SecretKey::from_slice(&bytes) {
                break secret;
            }
        };
        let public = secret.public_key().to_encoded_point(false);
        Ok(Self {
            private_key: URL_SAFE_NO_PAD.encode(secret.to_bytes()),
            public_key: URL_SAFE_NO_PAD.encode(public.as_bytes()),
        })
    }

    /// The pair kept in `dir` (`vapid.json`), made there the first time.
    pub fn kept_in(dir: &Path) -> Result<Self, BoxError> {
        let file = dir.join("vapid.json");
        if let Ok(text) = std::fs::read_to_string(&file) {
            return Ok(serde_json::from_str(&text)?);
        }
        let made = Self::generate()?;
        std::fs::create_dir_all(dir)?;
        // The private key is for this user alone.
        let mut kept = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&file)?;
        kept.write_all(serde_json::to_string_pretty(&made)?.as_bytes())?;
        Ok(made)
    }
}
