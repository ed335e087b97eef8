//! What clients send on their connection (API Gateway's `$default` route): heartbeats, saying whether
//! the client is in front of its user (`"state": "active" | "hidden" | "idle"`) and answered with
//! `pong`, and typing, relayed to the room's other members. A frame that cannot be honoured is
//! answered with an `error` frame carrying the status the HTTP API would give.

use aws_sdk_apigatewaymanagement::primitives::Blob;
use dm_shared::access::RoomAccess;
use dm_shared::ids::{OrgId, RoomId};
use dm_shared::store::{Attention, Connection};
use dm_shared::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Realtime;

/// The longest frame a client may send (API Gateway's own limit is 128 KB).
const MAX_FRAME_BYTES: usize = 4_096;

#[derive(Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
enum Frame {
    Ping {
        #[serde(default)]
        state: Attention,
    },
    Typing {
        org_id: String,
        room_id: String,
        state: Typing,
    },
}

#[derive(Clone, Copy, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
enum Typing {
    Start,
    Stop,
}

impl Realtime {
    /// Handles one frame `connection_id` sent. Only a failure to answer is an error: a frame that is
    /// refused is answered with an `error` frame.
    pub async fn receive(&self, connection_id: &str, body: &str) -> Result<()> {
        let Some(connection) = self.state.store.connection(connection_id).await? else { return Ok(()) };
        let reply = match self.answer(&connection, body).await {
            Ok(reply) => reply,
            Err(err) if err.status().is_server_error() => return Err(err),
            Err(err) => Some(json!({ "event": "error", "status": err.status().as_u16(), "message": err.to_string() })),
        };
        match reply {
            Some(reply) => self.post(connection_id, Blob::new(reply.to_string()), None).await,
            None => Ok(()),
        }
    }

    async fn answer(&self, connection: &Connection, body: &str) -> Result<Option<Value>> {
        if body.len() > MAX_FRAME_BYTES {
            return Err(Error::bad_request(format!("a frame holds at most {MAX_FRAME_BYTES} bytes")));
        }
        let frame: Frame = serde_json::from_str(body)
            .map_err(|err| Error::bad_request(format!("not a frame this API knows: {err}")))?;
        let store = &self.state.store;
        let (org, user) = (&connection.org_id, &connection.user_id);
        match frame {
            Frame::Ping { state } => {
                store.heartbeat(org, user, &connection.connection_id, state).await?;
                Ok(Some(json!({ "event": "pong" })))
            }
            Frame::Typing { org_id, room_id, state } => {
                if OrgId::parse(&org_id)? != *org {
                    return Err(Error::bad_request("this connection is for another org"));
                }
                let room = RoomId::parse(&room_id)?;
                let access = RoomAccess::load(store, org, &room, user, &[]).await?;
                access.require_member()?;
                let relayed = match state {
                    Typing::Start => store.typing_started(&room, user).await?,
                    Typing::Stop => store.typing_stopped(&room, user).await.map(|()| true)?,
                };
                if relayed {
                    let event = json!({ "event": "typing", "room_id": room, "user_id": user, "state": state });
                    let reach = crate::Reach::default();
                    self.post_to_users(org, access.room.room_user_ids, Some(user), &event, &reach).await?;
                }
                Ok(None)
            }
        }
    }
}
