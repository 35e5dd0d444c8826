//! respond.io Custom Channel wire types, exactly as the channel documentation shows them
//! (`shared/seeds/respond-io-custom-channel.txt`): the webhook body smsgate posts
//! (`channelId`, `contactId`, `events`, optional `contact`), the message inside the
//! `POST /message` body respond.io sends (the body itself is read field by field by
//! `http::message::body`), and the two response shapes (`{"mId":…}` and `{"error":{"message":…}}`).
//!
//! The ground floor of smsgate: it depends on serde alone. Events are built here, by their
//! constructors ([`Event::message`], [`Event::status`] …), and nowhere by hand.
//!
//! These types only (de)serialise. The documented limits are here as numbers ([`MAX_TEXT`] and
//! the others, counted as respond.io counts: [`text_length`]); `http::message` applies them to
//! what respond.io sends, field by field so that every rejection names its rule, and the inbox
//! splits an inbound text longer than [`MAX_TEXT`].

use serde::{Deserialize, Serialize};

/// Longest `message.text`, in UTF-16 code units ([`text_length`]).
pub const MAX_TEXT: usize = 7_000;
/// Longest `attachment.url`.
pub const MAX_URL: usize = 2_000;
/// Longest `attachment.fileName`, `attachment.description`, `location.address`,
/// `quick_reply.title` and each quick reply.
pub const MAX_SHORT: usize = 256;
/// Most quick replies.
pub const MAX_REPLIES: usize = 10;
/// Longest `contactId` (the seed: "Max 50 characters").
pub const MAX_CONTACT_ID: usize = 50;

/// A text's length as respond.io counts it, as JavaScript does: in UTF-16 code units, so an
/// emoji outside the Basic Multilingual Plane counts 2.
pub fn text_length(text: &str) -> usize {
    text.encode_utf16().count()
}

/// The body of one webhook request: events of ONE contact, oldest first. It borrows what it
/// carries, so posting a batch copies nothing.
///
/// Generic over the event type so the worker can post events exactly as they were queued
/// (`serde_json::Value`) while producers build them typed ([`Event`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody<'a, E = Event> {
    pub channel_id: &'a str,
    pub contact_id: &'a str,
    pub events: &'a [E],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
}

/// One webhook event (`events[]`), tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// An SMS the contact sent us.
    Message {
        #[serde(rename = "mId")]
        m_id: String,
        /// Unix milliseconds (for SMS: the service-centre timestamp).
        timestamp: i64,
        message: Message,
    },
    /// An SMS sent to the contact by other means than respond.io (`smsgate send`).
    MessageEcho {
        #[serde(rename = "mId")]
        m_id: String,
        timestamp: i64,
        message: Message,
    },
    /// A delivery receipt for a message respond.io sent through `POST /message`.
    MessageStatus {
        #[serde(rename = "mId")]
        m_id: String,
        timestamp: i64,
        status: Status,
    },
}

impl Event {
    /// An incoming text.
    pub fn message(m_id: impl Into<String>, timestamp: i64, text: impl Into<String>) -> Self {
        Self::Message {
            m_id: m_id.into(),
            timestamp,
            message: Message::Text { text: text.into() },
        }
    }

    /// A text sent outside respond.io.
    pub fn echo(m_id: impl Into<String>, timestamp: i64, text: impl Into<String>) -> Self {
        Self::MessageEcho {
            m_id: m_id.into(),
            timestamp,
            message: Message::Text { text: text.into() },
        }
    }

    /// A status without a message (`sent`, `delivered`, `read`).
    pub fn status(m_id: impl Into<String>, timestamp: i64, value: StatusValue) -> Self {
        Self::MessageStatus {
            m_id: m_id.into(),
            timestamp,
            status: Status {
                value,
                message: None,
            },
        }
    }

    /// A `failed` status; the seed requires `status.message` for it.
    pub fn failed(m_id: impl Into<String>, timestamp: i64, reason: impl Into<String>) -> Self {
        Self::MessageStatus {
            m_id: m_id.into(),
            timestamp,
            status: Status {
                value: StatusValue::Failed,
                message: Some(reason.into()),
            },
        }
    }

    /// The event's `mId`.
    pub fn m_id(&self) -> &str {
        match self {
            Self::Message { m_id, .. }
            | Self::MessageEcho { m_id, .. }
            | Self::MessageStatus { m_id, .. } => m_id,
        }
    }
}

/// `events[].status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub value: StatusValue,
    /// Required when `value` is `failed`: the reason in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `events[].status.value`. SMS has no read receipts, so smsgate never sends `read`; it is
/// here because the wire format has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusValue {
    Sent,
    Delivered,
    Read,
    Failed,
}

/// A message in respond.io's format: what `POST /message` carries and what `message` /
/// `message_echo` events carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    Text {
        text: String,
    },
    Attachment {
        attachment: Attachment,
    },
    Location {
        latitude: f64,
        /// The seed's field table spells it `longtitude`; its sample says `longitude`.
        /// Both are read, the sample's spelling is written.
        #[serde(alias = "longtitude")]
        longitude: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
    },
    QuickReply {
        title: String,
        replies: Vec<String>,
    },
}

/// `message.attachment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(rename = "type")]
    pub kind: AttachmentKind,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `message.attachment.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttachmentKind {
    Image,
    Video,
    Audio,
    File,
}

impl AttachmentKind {
    /// Parses the wire name (`image`, `video`, `audio`, `file`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "image" => Some(Self::Image),
            "video" => Some(Self::Video),
            "audio" => Some(Self::Audio),
            "file" => Some(Self::File),
            _ => None,
        }
    }
}

/// The optional `contact` object of a webhook body (all fields optional in the seed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_pic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// `200 {"mId": "…"}`, the answer to an accepted `POST /message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    #[serde(rename = "mId")]
    pub m_id: String,
}

/// `{"error": {"message": "…"}}`, the seed's shape for every 4xx.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorMessage,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    pub message: String,
}

impl ErrorBody {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            error: ErrorMessage {
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn message_event_matches_the_seed_sample() {
        let body = WebhookBody {
            channel_id: "gfd8g7fd89dgfd",
            contact_id: "+60177872890",
            events: &[Event::message(
                "xcvzzxcxczxczxc",
                2132131321000,
                "Hello World",
            )],
            contact: Some(Contact {
                phone: Some("+60177872890".into()),
                ..Contact::default()
            }),
        };
        assert_eq!(
            serde_json::to_value(&body).expect("serialises"),
            json!({
                "channelId": "gfd8g7fd89dgfd",
                "contactId": "+60177872890",
                "events": [{
                    "type": "message",
                    "mId": "xcvzzxcxczxczxc",
                    "timestamp": 2132131321000_i64,
                    "message": {"type": "text", "text": "Hello World"}
                }],
                "contact": {"phone": "+60177872890"}
            })
        );
    }

    #[test]
    fn echo_and_status_events_match_the_seed() {
        assert_eq!(
            serde_json::to_value(Event::echo("m1", 5, "hi")).expect("serialises"),
            json!({"type": "message_echo", "mId": "m1", "timestamp": 5,
                   "message": {"type": "text", "text": "hi"}})
        );
        assert_eq!(
            serde_json::to_value(Event::status("m1", 6, StatusValue::Delivered))
                .expect("serialises"),
            json!({"type": "message_status", "mId": "m1", "timestamp": 6,
                   "status": {"value": "delivered"}})
        );
        assert_eq!(
            serde_json::to_value(Event::failed("m1", 7, "invalid destination number"))
                .expect("serialises"),
            json!({"type": "message_status", "mId": "m1", "timestamp": 7,
                   "status": {"value": "failed", "message": "invalid destination number"}})
        );
    }

    #[test]
    fn every_message_type_of_the_seed_reads() {
        let samples = [
            json!({"type": "text", "text": "Welcome to respond.io"}),
            json!({"type": "attachment", "attachment": {"type": "image",
                   "url": "https://abc/japan.png", "mimeType": "image/png",
                   "fileName": "company logo.png", "description": "latest company logo"}}),
            json!({"type": "location", "latitude": 0.123456, "longitude": -0.1234,
                   "address": "Sky Suites"}),
            json!({"type": "quick_reply", "title": "Select your preferred language",
                   "replies": ["Malay", "English"]}),
        ];
        for sample in samples {
            let message: Message = serde_json::from_value(sample.clone()).expect("reads");
            assert_eq!(serde_json::to_value(&message).expect("writes"), sample);
        }
    }

    #[test]
    fn the_field_tables_spelling_of_longitude_is_read() {
        let message: Message =
            serde_json::from_value(json!({"type": "location", "latitude": 1.5, "longtitude": 2.5}))
                .expect("reads");
        assert_eq!(
            message,
            Message::Location {
                latitude: 1.5,
                longitude: 2.5,
                address: None
            }
        );
    }

    #[test]
    fn error_body_has_the_seed_shape() {
        assert_eq!(
            serde_json::to_value(ErrorBody::new("nope")).expect("serialises"),
            json!({"error": {"message": "nope"}})
        );
        assert_eq!(
            serde_json::to_value(Accepted { m_id: "1".into() }).expect("serialises"),
            json!({"mId": "1"})
        );
    }
}
