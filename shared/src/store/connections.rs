//! Open WebSocket connections: whose each is (an item with a TTL, for `$disconnect` and the
//! client's frames, which know only the connection), and each user's in their presence item
//! (`presence`), which the realtime push reads for many users at once.

use serde::{Deserialize, Serialize};

use super::{Store, keys};
use crate::error::{Error, Result};
use crate::ids::{OrgId, UserId};
use crate::time::epoch_secs;

/// How long a connection item lives: API Gateway closes a WebSocket after two hours at most.
pub const CONNECTION_TTL_SECS: u64 = 2 * 3600;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Connection {
    pub connection_id: String,
    pub org_id: OrgId,
    pub user_id: UserId,
    pub ttl: u64,
}

impl Store {
    /// Records an open connection of `user` in `org`.
    pub async fn open_connection(&self, org: &OrgId, user: &UserId, connection_id: &str) -> Result<()> {
        let connection = Connection {
            connection_id: connection_id.to_owned(),
            org_id: org.clone(),
            user_id: user.clone(),
            ttl: epoch_secs() + CONNECTION_TTL_SECS,
        };
        let items = vec![
            self.put(&keys::connection_owner(connection_id), &connection)?,
            self.presence_change(org, user, connection_id, true)?,
        ];
        self.transact(items).await?.map_err(|_| Error::internal_msg("recording a connection failed a condition"))
    }

    /// The open connection `connection_id`, if it is one.
    pub async fn connection(&self, connection_id: &str) -> Result<Option<Connection>> {
        self.get(&keys::connection_owner(connection_id)).await
    }

    /// Forgets a connection (closed, or gone when a post to it failed).
    pub async fn close_connection(&self, connection_id: &str) -> Result<()> {
        let Some(connection) = self.connection(connection_id).await? else {
            return Ok(());
        };
        let items = vec![
            self.delete(&keys::connection_owner(connection_id))?,
            self.presence_change(&connection.org_id, &connection.user_id, connection_id, false)?,
        ];
        self.transact(items).await?.map_err(|_| Error::internal_msg("forgetting a connection failed a condition"))
    }
}
