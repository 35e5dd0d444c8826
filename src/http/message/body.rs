//! `POST /message` bodies: reading the JSON, checking every rule of the channel documentation
//! (`shared/seeds/respond-io-custom-channel.txt`) field by field, and rendering the message as
//! SMS text (DESIGN.md §1).
//!
//! Pure functions: no I/O, no part counting (that needs the SMS encoder; see the handler in
//! [`super`]).
//! Every rejection names the field and the rule it broke, because respond.io shows the message
//! to the agent whose message did not go out.

use serde_json::{Map, Value};

use crate::phone::E164;
use crate::wire::{
    Attachment, AttachmentKind, MAX_CONTACT_ID, MAX_REPLIES, MAX_SHORT, MAX_TEXT, MAX_URL, Message,
    text_length,
};

/// Why a body was refused: the field (a JSON path such as `message.attachment.url`) and the
/// rule, in words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The body is not JSON at all; says where reading stopped.
    #[error("malformed JSON at line {line}, column {column}: {reason}")]
    Json {
        line: usize,
        column: usize,
        reason: String,
    },
    /// A field breaks a rule.
    #[error("{field}: {rule}")]
    Field { field: String, rule: String },
}

impl Invalid {
    fn field(field: &str, rule: impl Into<String>) -> Self {
        Self::Field {
            field: field.to_owned(),
            rule: rule.into(),
        }
    }
}

/// A checked `POST /message` body.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    pub contact: E164,
    pub message: Message,
}

/// Reads and checks a `POST /message` body for the channel `channel_id`.
///
/// Unknown fields are ignored (respond.io may add some); known fields must have the documented
/// type and limits. `null` counts as absent for optional fields.
pub fn parse(body: &[u8], channel_id: &str) -> Result<Checked, Invalid> {
    let mut reader = serde_json::Deserializer::from_slice(body);
    let value = serde::de::DeserializeSeed::deserialize(Strict(String::new()), &mut reader)
        .and_then(|value| reader.end().map(|()| value))
        .map_err(|error| Invalid::Json {
            line: error.line(),
            column: error.column(),
            reason: json_reason(&error),
        })?;
    let root = value
        .as_object()
        .ok_or_else(|| Invalid::field("body", "must be a JSON object"))?;
    let root = Fields::new(root, "");

    let channel = root.required_str("channelId")?;
    if channel != channel_id {
        return Err(Invalid::field(
            "channelId",
            format!("{channel:?} is not this channel's ID"),
        ));
    }

    let contact_id = root.required_str("contactId")?;
    if contact_id.chars().count() > MAX_CONTACT_ID {
        return Err(Invalid::field(
            "contactId",
            format!("must be at most {MAX_CONTACT_ID} characters"),
        ));
    }
    let contact = E164::parse(contact_id).map_err(|error| {
        Invalid::field(
            "contactId",
            format!("{contact_id:?} is not an E.164 phone number: {error}"),
        )
    })?;

    let message = root.required_object("message")?;
    let message = check_message(&message)?;
    Ok(Checked { contact, message })
}

fn check_message(fields: &Fields<'_>) -> Result<Message, Invalid> {
    let kind = fields.required_str("type")?;
    match kind {
        "text" => {
            let text = fields.required_str("text")?;
            fields.not_blank("text", text)?;
            fields.at_most("text", text, MAX_TEXT)?;
            Ok(Message::Text {
                text: text.to_owned(),
            })
        }
        "attachment" => {
            let attachment = fields.required_object("attachment")?;
            Ok(Message::Attachment {
                attachment: check_attachment(&attachment)?,
            })
        }
        "location" => {
            let latitude = fields.required_number("latitude")?;
            if !(-90.0..=90.0).contains(&latitude) {
                return Err(fields.invalid(
                    "latitude",
                    format!("must be between -90 and 90 degrees, not {latitude}"),
                ));
            }
            // The seed's table spells it "longtitude", its sample "longitude": take either.
            let longitude_name = if fields.has("longitude") || !fields.has("longtitude") {
                "longitude"
            } else {
                "longtitude"
            };
            let longitude = fields.required_number(longitude_name)?;
            if !(-180.0..=180.0).contains(&longitude) {
                return Err(fields.invalid(
                    longitude_name,
                    format!("must be between -180 and 180 degrees, not {longitude}"),
                ));
            }
            let address = fields.optional_str("address")?;
            if let Some(address) = address {
                fields.at_most("address", address, MAX_SHORT)?;
            }
            Ok(Message::Location {
                latitude,
                longitude,
                address: address.filter(|a| !a.trim().is_empty()).map(str::to_owned),
            })
        }
        "quick_reply" => {
            let title = fields.required_str("title")?;
            fields.not_blank("title", title)?;
            fields.at_most("title", title, MAX_SHORT)?;
            let replies = fields.required_array("replies")?;
            if replies.is_empty() || replies.len() > MAX_REPLIES {
                return Err(fields.invalid(
                    "replies",
                    format!(
                        "must hold 1 to {MAX_REPLIES} replies, not {}",
                        replies.len()
                    ),
                ));
            }
            let mut checked = Vec::with_capacity(replies.len());
            for (index, reply) in replies.iter().enumerate() {
                let name = format!("replies[{index}]");
                let reply = reply
                    .as_str()
                    .ok_or_else(|| fields.invalid(&name, "must be a string"))?;
                fields.not_blank(&name, reply)?;
                fields.at_most(&name, reply, MAX_SHORT)?;
                checked.push(reply.to_owned());
            }
            Ok(Message::QuickReply {
                title: title.to_owned(),
                replies: checked,
            })
        }
        other => Err(fields.invalid(
            "type",
            format!(
                "unknown message type {other:?}; this channel takes text, attachment, location \
                 and quick_reply"
            ),
        )),
    }
}

fn check_attachment(fields: &Fields<'_>) -> Result<Attachment, Invalid> {
    let kind_name = fields.required_str("type")?;
    let kind = AttachmentKind::parse(kind_name).ok_or_else(|| {
        fields.invalid(
            "type",
            format!("{kind_name:?} is not an attachment type; use image, video, audio or file"),
        )
    })?;
    let url = fields.required_str("url")?;
    fields.not_blank("url", url)?;
    fields.at_most("url", url, MAX_URL)?;
    let mime_type = fields.optional_str("mimeType")?;
    let file_name = fields.optional_str("fileName")?;
    if let Some(file_name) = file_name {
        fields.at_most("fileName", file_name, MAX_SHORT)?;
    }
    let description = fields.optional_str("description")?;
    if let Some(description) = description {
        fields.at_most("description", description, MAX_SHORT)?;
    }
    Ok(Attachment {
        kind,
        url: url.to_owned(),
        mime_type: mime_type.map(str::to_owned),
        file_name: file_name.map(str::to_owned),
        description: description.map(str::to_owned),
    })
}

/// Renders a message as the text of one SMS (DESIGN.md §1): SMS carries no media, places or
/// buttons, so each becomes words and a link.
pub fn render(message: &Message) -> String {
    match message {
        Message::Text { text } => text.clone(),
        Message::Attachment { attachment } => {
            let label = [&attachment.description, &attachment.file_name]
                .into_iter()
                .flatten()
                .map(|label| label.trim())
                .find(|label| !label.is_empty());
            match label {
                Some(label) => format!("{label}\n{}", attachment.url.trim()),
                None => attachment.url.trim().to_owned(),
            }
        }
        Message::Location {
            latitude,
            longitude,
            address,
        } => {
            let link = map_link(*latitude, *longitude);
            match address.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
                Some(address) => format!("{address}\n{link}"),
                None => link,
            }
        }
        Message::QuickReply { title, replies } => {
            let mut text = title.trim().to_owned();
            for (index, reply) in replies.iter().enumerate() {
                text.push_str(&format!("\n{}. {}", index + 1, reply.trim()));
            }
            text
        }
    }
}

/// A map link any phone opens (the maps app where installed, the browser otherwise).
/// Coordinates are cut to 6 decimals (about 0.1 m), enough for a street address.
pub fn map_link(latitude: f64, longitude: f64) -> String {
    format!(
        "https://maps.google.com/?q={},{}",
        coordinate(latitude),
        coordinate(longitude)
    )
}

fn coordinate(value: f64) -> String {
    let text = format!("{value:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// The part of a serde_json error message before its " at line …" suffix.
fn json_reason(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// Reads a JSON value refusing duplicate object keys: serde_json keeps the last one silently,
/// so `{"text":"a","text":"b"}` would send "b" while a log or a proxy in front shows "a".
/// The string is the path of the value being read (`message.`), for the error.
struct Strict(String);

impl<'de> serde::de::DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict(format!(
            "{}[{}].",
            self.0.trim_end_matches('.'),
            items.len()
        )))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "the key \"{}{key}\" appears twice; send each key once",
                    self.0
                )));
            }
            let value = map.next_value_seed(Strict(format!("{}{key}.", self.0)))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// Typed access to one JSON object's fields, with error messages carrying the field's path.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Fields<'a> {
    fn new(map: &'a Map<String, Value>, path: &str) -> Self {
        Self {
            map,
            path: path.to_owned(),
        }
    }

    fn name(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        }
    }

    fn invalid(&self, field: &str, rule: impl Into<String>) -> Invalid {
        Invalid::field(&self.name(field), rule)
    }

    fn has(&self, field: &str) -> bool {
        self.map.get(field).is_some_and(|v| !v.is_null())
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn required(&self, field: &str, what: &str) -> Result<&'a Value, Invalid> {
        self.get(field)
            .ok_or_else(|| self.invalid(field, format!("is required ({what})")))
    }

    fn required_str(&self, field: &str) -> Result<&'a str, Invalid> {
        self.required(field, "a string")?
            .as_str()
            .ok_or_else(|| self.invalid(field, "must be a string"))
    }

    fn optional_str(&self, field: &str) -> Result<Option<&'a str>, Invalid> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => value
                .as_str()
                .map(Some)
                .ok_or_else(|| self.invalid(field, "must be a string")),
        }
    }

    fn required_number(&self, field: &str) -> Result<f64, Invalid> {
        self.required(field, "a number")?
            .as_f64()
            .ok_or_else(|| self.invalid(field, "must be a number"))
    }

    fn required_array(&self, field: &str) -> Result<&'a Vec<Value>, Invalid> {
        self.required(field, "a list")?
            .as_array()
            .ok_or_else(|| self.invalid(field, "must be a list of strings"))
    }

    fn required_object(&self, field: &str) -> Result<Fields<'a>, Invalid> {
        let map = self
            .required(field, "an object")?
            .as_object()
            .ok_or_else(|| self.invalid(field, "must be an object"))?;
        Ok(Fields::new(map, &self.name(field)))
    }

    /// Lengths are counted in UTF-16 code units, as respond.io counts them.
    fn at_most(&self, field: &str, value: &str, max: usize) -> Result<(), Invalid> {
        let length = text_length(value);
        if length > max {
            let note = if length == value.chars().count() {
                ""
            } else {
                " (counted as respond.io counts, in UTF-16 code units: an emoji counts 2)"
            };
            return Err(self.invalid(
                field,
                format!("must be at most {max} characters, not {length}{note}"),
            ));
        }
        Ok(())
    }

    fn not_blank(&self, field: &str, value: &str) -> Result<(), Invalid> {
        if value.trim().is_empty() {
            return Err(self.invalid(field, "must not be empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CHANNEL: &str = "gfd8g7fd89dgfd";

    fn body(message: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "channelId": CHANNEL, "contactId": "+60177872890", "message": message
        }))
        .expect("serialises")
    }

    fn rejection(message: Value) -> String {
        match parse(&body(message.clone()), CHANNEL) {
            Ok(checked) => panic!("{message} was accepted: {checked:?}"),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn the_seed_samples_are_accepted_and_rendered() {
        let cases = [
            (
                json!({"type": "text", "text": "Welcome to respond.io"}),
                "Welcome to respond.io",
            ),
            (
                json!({"type": "attachment", "attachment": {"type": "image",
                       "url": "https://abc/japan.png", "mimeType": "image/png",
                       "fileName": "company logo.png", "description": "latest company logo"}}),
                "latest company logo\nhttps://abc/japan.png",
            ),
            (
                json!({"type": "attachment", "attachment": {"type": "file",
                       "url": "https://abc/menu.pdf", "fileName": "menu.pdf"}}),
                "menu.pdf\nhttps://abc/menu.pdf",
            ),
            (
                json!({"type": "attachment", "attachment": {"type": "video",
                       "url": "https://abc/v.mp4"}}),
                "https://abc/v.mp4",
            ),
            (
                json!({"type": "location", "latitude": 0.123456, "longitude": -0.1234,
                       "address": "Sky Suites, Jalan P. Ramlee"}),
                "Sky Suites, Jalan P. Ramlee\nhttps://maps.google.com/?q=0.123456,-0.1234",
            ),
            (
                json!({"type": "location", "latitude": 3.1, "longtitude": 101.0}),
                "https://maps.google.com/?q=3.1,101",
            ),
            (
                json!({"type": "quick_reply", "title": "Select your preferred language",
                       "replies": ["Malay", "English"]}),
                "Select your preferred language\n1. Malay\n2. English",
            ),
        ];
        for (message, want) in cases {
            let checked = parse(&body(message.clone()), CHANNEL)
                .unwrap_or_else(|error| panic!("{message}: {error}"));
            assert_eq!(checked.contact.as_str(), "+60177872890");
            assert_eq!(render(&checked.message), want, "{message}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let text = "a".repeat(MAX_TEXT);
        assert!(parse(&body(json!({"type": "text", "text": text})), CHANNEL).is_ok());
        let long = "é".repeat(MAX_SHORT);
        let replies: Vec<String> = (0..MAX_REPLIES).map(|_| long.clone()).collect();
        assert!(
            parse(
                &body(json!({"type": "quick_reply", "title": long, "replies": replies})),
                CHANNEL
            )
            .is_ok()
        );
        assert!(
            parse(
                &body(json!({"type": "location", "latitude": -90, "longitude": 180})),
                CHANNEL
            )
            .is_ok()
        );
    }

    #[test]
    fn every_rule_names_its_field() {
        let long = "x".repeat(MAX_SHORT + 1);
        let cases = [
            (json!({"text": "hi"}), "message.type: is required"),
            (
                json!({"type": "sticker"}),
                "message.type: unknown message type \"sticker\"",
            ),
            (json!({"type": 5}), "message.type: must be a string"),
            (json!({"type": "text"}), "message.text: is required"),
            (
                json!({"type": "text", "text": "  "}),
                "message.text: must not be empty",
            ),
            (
                json!({"type": "text", "text": "a".repeat(MAX_TEXT + 1)}),
                "message.text: must be at most 7000 characters, not 7001",
            ),
            (
                json!({"type": "attachment"}),
                "message.attachment: is required",
            ),
            (
                json!({"type": "attachment", "attachment": {"type": "gif", "url": "u"}}),
                "message.attachment.type: \"gif\" is not an attachment type",
            ),
            (
                json!({"type": "attachment", "attachment": {"type": "image"}}),
                "message.attachment.url: is required",
            ),
            (
                json!({"type": "attachment", "attachment":
                       {"type": "image", "url": "u".repeat(MAX_URL + 1)}}),
                "message.attachment.url: must be at most 2000 characters, not 2001",
            ),
            (
                json!({"type": "attachment", "attachment":
                       {"type": "file", "url": "u", "fileName": long}}),
                "message.attachment.fileName: must be at most 256 characters",
            ),
            (
                json!({"type": "attachment", "attachment":
                       {"type": "image", "url": "u", "description": long}}),
                "message.attachment.description: must be at most 256 characters",
            ),
            (
                json!({"type": "location", "longitude": 1}),
                "message.latitude: is required",
            ),
            (
                json!({"type": "location", "latitude": 90.5, "longitude": 1}),
                "message.latitude: must be between -90 and 90 degrees, not 90.5",
            ),
            (
                json!({"type": "location", "latitude": "1", "longitude": 1}),
                "message.latitude: must be a number",
            ),
            (
                json!({"type": "location", "latitude": 1}),
                "message.longitude: is required",
            ),
            (
                json!({"type": "location", "latitude": 1, "longitude": -181}),
                "message.longitude: must be between -180 and 180 degrees, not -181",
            ),
            (
                json!({"type": "location", "latitude": 1, "longitude": 1, "address": long}),
                "message.address: must be at most 256 characters",
            ),
            (
                json!({"type": "quick_reply", "replies": ["a"]}),
                "message.title: is required",
            ),
            (
                json!({"type": "quick_reply", "title": long, "replies": ["a"]}),
                "message.title: must be at most 256 characters",
            ),
            (
                json!({"type": "quick_reply", "title": "t"}),
                "message.replies: is required",
            ),
            (
                json!({"type": "quick_reply", "title": "t", "replies": []}),
                "message.replies: must hold 1 to 10 replies, not 0",
            ),
            (
                json!({"type": "quick_reply", "title": "t",
                       "replies": ["1","2","3","4","5","6","7","8","9","10","11"]}),
                "message.replies: must hold 1 to 10 replies, not 11",
            ),
            (
                json!({"type": "quick_reply", "title": "t", "replies": ["a", long]}),
                "message.replies[1]: must be at most 256 characters",
            ),
            (
                json!({"type": "quick_reply", "title": "t", "replies": ["a", 2]}),
                "message.replies[1]: must be a string",
            ),
        ];
        for (message, want) in cases {
            let got = rejection(message.clone());
            assert!(got.starts_with(want), "{message}: {got}");
        }
    }

    #[test]
    fn envelope_rules() {
        let check = |value: Value, want: &str| {
            let got = parse(&serde_json::to_vec(&value).expect("json"), CHANNEL)
                .expect_err(want)
                .to_string();
            assert!(got.starts_with(want), "{value}: {got}");
        };
        let text = json!({"type": "text", "text": "hi"});
        check(json!([1]), "body: must be a JSON object");
        check(
            json!({"contactId": "+60177872890", "message": text}),
            "channelId: is required",
        );
        check(
            json!({"channelId": "other", "contactId": "+60177872890", "message": text}),
            "channelId: \"other\" is not this channel's ID",
        );
        check(
            json!({"channelId": CHANNEL, "message": text}),
            "contactId: is required",
        );
        check(
            json!({"channelId": CHANNEL, "contactId": "0177872890", "message": text}),
            "contactId: \"0177872890\" is not an E.164 phone number: must start with '+'",
        );
        check(
            json!({"channelId": CHANNEL, "contactId": "+6017abc", "message": text}),
            "contactId: \"+6017abc\" is not an E.164 phone number",
        );
        check(
            json!({"channelId": CHANNEL, "contactId": "+60177872890"}),
            "message: is required",
        );
        check(
            json!({"channelId": CHANNEL, "contactId": "+60177872890", "message": "hi"}),
            "message: must be an object",
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for (body, key) in [
            (
                r#"{"channelId":"gfd8g7fd89dgfd","channelId":"other","contactId":"+60177872890","message":{"type":"text","text":"a"}}"#,
                "channelId",
            ),
            (
                r#"{"channelId":"gfd8g7fd89dgfd","contactId":"+60177872890","message":{"type":"text","text":"a","text":"b"}}"#,
                "message.text",
            ),
            (
                r#"{"channelId":"gfd8g7fd89dgfd","contactId":"+60177872890","message":{"type":"quick_reply","title":"t","replies":["a",{"x":1,"x":2}]}}"#,
                "message.replies[1].x",
            ),
        ] {
            let error = parse(body.as_bytes(), CHANNEL).expect_err(body).to_string();
            assert!(
                error.contains(&format!("the key \"{key}\" appears twice")),
                "{body}: {error}"
            );
        }
        // The same key in different objects is fine.
        let body = r#"{"channelId":"gfd8g7fd89dgfd","contactId":"+60177872890","message":{"type":"text","text":"a"},"type":"x"}"#;
        assert!(parse(body.as_bytes(), CHANNEL).is_ok());
        assert!(
            parse(b"{} {}", CHANNEL).is_err(),
            "trailing data is refused"
        );
    }

    #[test]
    fn text_length_is_counted_in_utf16_units() {
        // 3,501 emoji: 3,501 characters, 7,002 UTF-16 units.
        let emoji = "\u{1F600}".repeat(3_501);
        let error = rejection(json!({"type": "text", "text": emoji}));
        assert!(
            error.starts_with("message.text: must be at most 7000 characters, not 7002"),
            "{error}"
        );
        let fits = "\u{1F600}".repeat(3_500);
        assert!(parse(&body(json!({"type": "text", "text": fits})), CHANNEL).is_ok());
    }

    #[test]
    fn malformed_json_says_where() {
        let error =
            parse(b"{\"channelId\": \"x\",\n  \"contactId\": }", CHANNEL).expect_err("malformed");
        assert_eq!(
            error.to_string(),
            "malformed JSON at line 2, column 16: expected value"
        );
    }

    #[test]
    fn coordinates_are_short() {
        assert_eq!(map_link(0.0, -0.0), "https://maps.google.com/?q=0,0");
        assert_eq!(
            map_link(3.147_852_123, 101.693_201),
            "https://maps.google.com/?q=3.147852,101.693201"
        );
        assert_eq!(map_link(-90.0, 180.0), "https://maps.google.com/?q=-90,180");
    }
}
