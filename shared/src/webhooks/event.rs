//! What a webhook carries: one recorded change, rendered once, in Clerk's event shape.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::domain::{Session, User};
use crate::wire::{self, Audience};

/// The event types this service sends (Clerk's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "session.created")]
    SessionCreated,
    #[serde(rename = "session.ended")]
    SessionEnded,
    #[serde(rename = "session.removed")]
    SessionRemoved,
    #[serde(rename = "session.revoked")]
    SessionRevoked,
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.deleted")]
    UserDeleted,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::SessionCreated,
        EventType::SessionEnded,
        EventType::SessionRemoved,
        EventType::SessionRevoked,
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionCreated => "session.created",
            EventType::SessionEnded => "session.ended",
            EventType::SessionRemoved => "session.removed",
            EventType::SessionRevoked => "session.revoked",
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeleted => "user.deleted",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// The request that made a change (Clerk's `event_attributes.http_request`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestOrigin {
    pub client_ip: String,
    pub user_agent: String,
}

/// One recorded change, committed in the same transaction as the change itself, so a
/// change that lands has exactly one event and a change that is retried or lost has none.
/// Every endpoint subscribed to its type receives `payload` byte for byte, under the
/// `svix-id` `id`, on every attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `msg_…`: the `svix-id` a receiver de-duplicates by.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// Events with one key (a session's id, or a user's for `user.*`) reach each endpoint
    /// in the order they were recorded.
    pub key: String,
    pub created_at: Millis,
    /// The JSON body as delivered.
    pub payload: String,
}

#[derive(Serialize)]
struct Attributes<'a> {
    http_request: &'a RequestOrigin,
}

/// Clerk's event envelope.
#[derive(Serialize)]
struct Payload<'a, D> {
    data: D,
    event_attributes: Attributes<'a>,
    instance_id: &'a str,
    object: &'static str,
    timestamp: Millis,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A session event's data: the Backend API session with its user (Clerk's
/// `SessionWebhookEventJSON`).
#[derive(Serialize)]
struct SessionData<'a> {
    #[serde(flatten)]
    session: wire::BackendSessionJson<'a>,
    user: Option<wire::UserJson<'a>>,
}

/// `user.deleted`'s data (Clerk's `UserDeletedJSON`).
#[derive(Serialize)]
struct DeletedUser<'a> {
    deleted: bool,
    external_id: Option<&'a str>,
    id: &'a str,
    object: &'static str,
}

/// Who the events are for and where the change came from: what every event of one
/// request shares.
#[derive(Clone, Debug)]
pub struct EventContext<'a> {
    pub instance_id: &'a str,
    pub origin: &'a RequestOrigin,
    pub now: Millis,
}

impl EventContext<'_> {
    fn event(&self, kind: EventType, key: &str, data: impl Serialize) -> Event {
        let payload = Payload {
            data,
            event_attributes: Attributes {
                http_request: self.origin,
            },
            instance_id: self.instance_id,
            object: "event",
            timestamp: self.now,
            kind: kind.as_str(),
        };
        Event {
            id: crate::ids::new_id("msg"),
            kind,
            key: key.to_string(),
            created_at: self.now,
            // Plain structs of strings and numbers: serializing them cannot fail.
            payload: serde_json::to_string(&payload).unwrap_or_default(),
        }
    }

    /// A `session.*` event, `session` as it is after the change.
    pub fn session(&self, kind: EventType, session: &Session, user: Option<&User>) -> Event {
        let data = SessionData {
            session: wire::backend_session(session, self.now),
            user: user.map(|u| wire::user(u, Audience::Backend)),
        };
        self.event(kind, &session.id, data)
    }

    /// `user.created` or `user.updated`, `user` as it is after the change.
    pub fn user(&self, kind: EventType, user: &User) -> Event {
        self.event(kind, &user.id, wire::user(user, Audience::Backend))
    }

    /// `user.deleted`.
    pub fn user_deleted(&self, user: &User) -> Event {
        let data = DeletedUser {
            deleted: true,
            external_id: user.external_id.as_deref(),
            id: &user.id,
            object: "user",
        };
        self.event(EventType::UserDeleted, &user.id, data)
    }
}
