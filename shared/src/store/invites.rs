//! Invitations to an org: a link whose token is the only way to the invite. The token is 256 bits
//! from the operating system's CSPRNG and is never stored: the invite's key is the token's SHA-256
//! digest, so neither the table nor its backups hold a usable link, and looking a token up is one
//! read of a key whatever the token (an unknown and a revoked one take the same path). The org's list
//! names each invite by id beside its digest.

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::messages::{tx_update, value};
use super::{Order, Store, failed_at, from_item, keys};
use crate::error::{Error, Result};
use crate::ids::{InviteId, OrgId, UserId};
use crate::model::{Member, Role};
use crate::paging::{Page, PageRequest};

/// An invite lasts this long unless its creator says otherwise (Slack's and Discord's default).
pub const DEFAULT_INVITE_SECS: u64 = 7 * 24 * 3600;
/// The shortest and longest life an invite may be given.
pub const MIN_INVITE_SECS: u64 = 60;
pub const MAX_INVITE_SECS: u64 = 30 * 24 * 3600;
pub const MAX_INVITE_USES: u32 = 1000;
/// An invite is kept this long past its expiry, so its link says "expired" rather than "unknown".
const KEPT_AFTER_EXPIRY_SECS: u64 = 7 * 24 * 3600;

/// Bytes of randomness in a token: 256 bits, written as 43 base64url characters.
const TOKEN_BYTES: usize = 32;
const TOKEN_CHARS: usize = 43;

/// An invite's secret, as its link carries it, and the digest the table keys its invite by.
pub struct InviteToken {
    text: String,
    digest: String,
}

impl InviteToken {
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|err| Error::internal(err.to_string()))?;
        Ok(Self::parse(&URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A token as a link gives it. One no invite could have (the wrong length or alphabet) gets a
    /// digest no invite has: it is looked up like any other and reads as unknown, so the caller
    /// learns nothing more, no sooner.
    pub fn parse(text: &str) -> Self {
        let well_formed =
            text.len() == TOKEN_CHARS && URL_SAFE_NO_PAD.decode(text).is_ok_and(|bytes| bytes.len() == TOKEN_BYTES);
        let digest = match well_formed {
            true => URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes())),
            false => "-".repeat(TOKEN_CHARS),
        };
        Self { text: text.to_owned(), digest }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// An invite as stored under its token's digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    pub invite_id: InviteId,
    pub org_id: OrgId,
    pub org_name: String,
    pub role: Role,
    pub invited_by: UserId,
    /// The inviter's display name when they made it: what the preview shows.
    pub inviter_name: String,
    /// Whom it was made for, as a label: the API does not know callers' verified addresses, so it
    /// does not hold anyone to it; the member it makes gets it as their e-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    /// `expires_at` in epoch seconds, for the accept's condition.
    pub expires_secs: u64,
    /// Unlimited when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    pub uses: u32,
}

impl Invite {
    /// Whether it may still be accepted at `now` (epoch seconds): 410 when expired or used up.
    pub fn check_live(&self, now: u64) -> Result<()> {
        if self.expires_secs <= now {
            return Err(Error::Gone("This invite has expired: ask for a new one".into()));
        }
        if self.max_uses.is_some_and(|max| self.uses >= max) {
            return Err(Error::Gone("This invite has been used up: ask for a new one".into()));
        }
        Ok(())
    }
}

/// An invite with the time DynamoDB may delete it.
#[derive(Serialize)]
struct StoredInvite<'a> {
    #[serde(flatten)]
    invite: &'a Invite,
    ttl: u64,
}

/// The org's list entry of an invite.
#[derive(Serialize, Deserialize)]
struct InviteEntry {
    invite_id: InviteId,
    token_digest: String,
    ttl: u64,
}

/// What accepting an invite did.
pub enum Accepted {
    /// The caller became a member, and the invite counted one use.
    Joined(Member),
    /// The caller already was a member: nothing changed, no use counted.
    AlreadyMember(Member),
}

fn no_such_invite() -> Error {
    Error::not_found("No such invite: the link may be mistyped, or the invite revoked")
}

impl Store {
    /// Stores a new invite and its org's list entry, in one transaction that holds only while its
    /// maker (`by`) still has the role that let them make it.
    pub async fn create_invite(&self, invite: &Invite, token: &InviteToken, by: &Member) -> Result<()> {
        let entry = InviteEntry {
            invite_id: invite.invite_id.clone(),
            token_digest: token.digest.clone(),
            ttl: invite.expires_secs + KEPT_AFTER_EXPIRY_SECS,
        };
        let stored = StoredInvite { invite, ttl: entry.ttl };
        let items = vec![
            self.put_new(&keys::invite_entry(&invite.org_id, &invite.invite_id), &entry)?,
            self.put_new(&keys::invite(&token.digest), &stored)?,
            self.still_holds(by)?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 2) => Err(Error::forbidden("Your own role changed meanwhile")),
            Err(_) => Err(Error::conflict("the invite already exists")),
        }
    }

    /// The invite `token` opens, live or not; 404 when there is none (never made, or revoked).
    pub async fn invite(&self, token: &InviteToken) -> Result<Invite> {
        self.get(&keys::invite(&token.digest)).await?.ok_or_else(no_such_invite)
    }

    /// A page of the org's live invites (newest first), each read whole in one BatchGet.
    pub async fn invites(&self, org: &OrgId, page: &PageRequest) -> Result<Page<Invite>> {
        let entries = self.query_page(keys::members_pk(org), keys::INVITE_PREFIX, Order::NewestFirst, page).await?;
        let entries = entries.try_map(from_item::<InviteEntry>)?;
        let invites = self.joined(entries, |entry| keys::invite(&entry.token_digest)).await?;
        let now = crate::time::epoch_secs();
        let mut invites = invites.try_map(|(_, invite): (_, Invite)| Ok::<_, Error>(invite))?;
        invites.items.retain(|invite| invite.check_live(now).is_ok());
        Ok(invites)
    }

    /// Revokes an invite, as `by` (an owner or admin) asks: its link stops working at once. 404
    /// when the org has no such invite.
    pub async fn revoke_invite(&self, org: &OrgId, invite_id: &InviteId, by: &Member) -> Result<()> {
        let entry_key = keys::invite_entry(org, invite_id);
        let entry: InviteEntry = self.get(&entry_key).await?.ok_or_else(|| Error::not_found("No such invite"))?;
        let items = vec![
            super::tx::conditional_delete(self, &entry_key)?,
            self.delete(&keys::invite(&entry.token_digest))?,
            self.still_holds(by)?,
        ];
        match self.transact(items).await? {
            Ok(()) => Ok(()),
            Err(reasons) if failed_at(&reasons, 2) => Err(Error::forbidden("Your own role changed meanwhile")),
            Err(_) => Err(Error::not_found("No such invite")),
        }
    }

    /// Makes `member` (the caller, with the invite's role) a member of the invite's org and counts
    /// one use, in one transaction that holds only while the invite is live and the caller not a
    /// member: two accepts of a one-use invite make one member, and an accept racing its revocation
    /// either lands before it or not at all. Someone already in the org stays as they are, whatever
    /// the invite's state; anyone else gets 410 for an invite expired or used up.
    pub async fn accept_invite(&self, token: &InviteToken, invite: &Invite, member: &Member) -> Result<Accepted> {
        let member_key = keys::member(&invite.org_id, &member.id);
        if let Some(existing) = self.member_record(&invite.org_id, &member.id).await? {
            if !existing.deleted {
                return Ok(Accepted::AlreadyMember(existing));
            }
            // A removal cut short is finished here, so it never stands between someone and an invite.
            self.remove_from_org(&existing, &existing).await?;
        }
        invite.check_live(crate::time::epoch_secs())?;
        let count = self
            .update_builder(&keys::invite(&token.digest))
            .update_expression("SET uses = uses + :one")
            .condition_expression(
                "attribute_exists(PK) AND expires_secs > :now AND (attribute_not_exists(max_uses) OR uses < max_uses)",
            )
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":now", value(&crate::time::epoch_secs())?);
        let items = vec![tx_update(count)?, self.put_new(&member_key, member)?];
        let changed = || Error::conflict("Your membership changed while joining: try again");
        match self.transact(items).await? {
            Ok(()) => Ok(Accepted::Joined(member.clone())),
            // Joined meanwhile (another accept, another device): a member stays as they are.
            Err(reasons) if failed_at(&reasons, 1) => match self.member(&invite.org_id, &member.id).await? {
                Some(existing) => Ok(Accepted::AlreadyMember(existing)),
                None => Err(changed()),
            },
            Err(_) => {
                // The invite was revoked, expired or used up meanwhile: say which, as a preview would.
                self.invite(token).await?.check_live(crate::time::epoch_secs())?;
                Err(changed())
            }
        }
    }
}
