//! Naming a message or a thread reply.

use super::keys::{self, Key};
use crate::ids::{MessageId, RoomId};
use crate::model::Message;

/// Which post a route names: a message, or a reply in a message's thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostRef {
    Message(MessageId),
    Reply { parent: MessageId, id: MessageId },
}

impl PostRef {
    pub fn of(message: &Message) -> Self {
        match &message.parent {
            None => Self::Message(message.id.clone()),
            Some(parent) => Self::Reply { parent: parent.clone(), id: message.id.clone() },
        }
    }

    pub(crate) fn key(&self, room: &RoomId) -> Key {
        match self {
            Self::Message(id) => keys::message(room, id),
            Self::Reply { parent, id } => keys::thread_reply(room, parent, id),
        }
    }
}
