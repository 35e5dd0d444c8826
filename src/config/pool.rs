//! The pool of modems: `[modem]` (a pool of one, named `modem`) or `[[modems]]` (named
//! modems, each with every key of `[modem]` and its own pacing), and `[routing]`.
//!
//! Checks names (`[a-z0-9_-]{1,32}`, unique), ports (a device path or `tcp://HOST:PORT`, never
//! two modems on one), line settings and pacing values, and turns each modem into a
//! [`PoolModem`]: its name, its parsed [`Endpoint`], its [`Limits`] and its keys as written.
//! It opens nothing (`check-config` must work on a machine without the modems).

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

use super::{BalanceCheck, ConfigError, Endpoint, ModemConfig, Secret};
use crate::pacing::Limits;

/// The name `[modem]` gives its one modem.
pub const SINGLE_MODEM_NAME: &str = "modem";

/// Longest modem name (it appears in logs, metrics labels and status lines).
pub const MAX_NAME_LEN: usize = 32;

/// A modem's name: 1 to 32 of `a-z`, `0-9`, `_` and `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModemName(String);

impl ModemName {
    /// Checks a name as written in `[[modems]]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("is empty".into());
        }
        if text.len() > MAX_NAME_LEN {
            return Err(format!(
                "{text:?} is {} characters long; at most {MAX_NAME_LEN}",
                text.chars().count()
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'))
        {
            return Err(format!(
                "{text:?} has {bad:?}: use only a-z, 0-9, _ and - (it appears in metrics labels \
                 and status lines)"
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModemName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One modem of the pool, checked.
#[derive(Debug, Clone)]
pub struct PoolModem {
    /// `modem` for `[modem]`; the `name` key for `[[modems]]`.
    pub name: ModemName,
    /// Where it is reached (`port`, parsed).
    pub endpoint: Endpoint,
    /// Its carrier-safe pacing (absent keys: no limit).
    pub pacing: Limits,
    /// Its keys as written (`port` unparsed, the pacing keys as options).
    pub modem: ModemConfig,
    /// Its balance check by USSD (`balance_ussd` and the keys beside it), when it has one.
    pub balance: Option<BalanceCheck>,
}

/// `[routing]`: how messages are spread over the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// A contact stays on the SIM they last exchanged an SMS with.
    #[serde(default = "default_sticky")]
    pub sticky: bool,
    /// How long a SIM may be unusable before its contacts' queued messages move to another;
    /// `None` (written `"off"`): never.
    #[serde(
        default = "default_failover_after",
        deserialize_with = "failover_after"
    )]
    pub failover_after: Option<Duration>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            sticky: default_sticky(),
            failover_after: default_failover_after(),
        }
    }
}

fn default_sticky() -> bool {
    true
}

fn default_failover_after() -> Option<Duration> {
    Some(Duration::from_secs(600))
}

/// `"10m"` → 10 minutes; `"off"` → never.
fn failover_after<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    let advice = "write a duration such as \"10m\", or \"off\" to never move contacts";
    let text = match toml::Value::deserialize(deserializer)? {
        toml::Value::String(text) => text,
        other => {
            return Err(serde::de::Error::custom(format!(
                "failover_after = {other}: {advice}"
            )));
        }
    };
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match humantime::parse_duration(text.trim()) {
        Ok(duration) if duration.is_zero() => Err(serde::de::Error::custom(format!(
            "failover_after = {text:?} would move contacts at the first hiccup: {advice}"
        ))),
        Ok(duration) => Ok(Some(duration)),
        Err(error) => Err(serde::de::Error::custom(format!(
            "failover_after = {text:?} ({error}): {advice}"
        ))),
    }
}

fn invalid<T>(message: String) -> Result<T, ConfigError> {
    Err(ConfigError::Invalid(message))
}

/// Checks `[modem]` or `[[modems]]` (at most one of them) and builds the pool.
pub(super) fn build(
    single: Option<ModemConfig>,
    many: Option<Vec<ModemConfig>>,
) -> Result<Vec<PoolModem>, ConfigError> {
    let pool = match (single, many) {
        (Some(_), Some(_)) => {
            return invalid(
                "both [modem] and [[modems]] are given: use [modem] for one modem or [[modems]] \
                 for a pool (move the [modem] keys into a [[modems]] entry with a name)"
                    .into(),
            );
        }
        (_, Some(many)) if many.is_empty() => {
            return invalid(
                "modems is empty: list each modem as a [[modems]] table with a name and a port"
                    .into(),
            );
        }
        (_, Some(many)) => many
            .into_iter()
            .enumerate()
            .map(|(index, modem)| {
                let Some(name) = modem.name.as_deref() else {
                    return invalid(format!(
                        "modems[{index}] has no name: give every [[modems]] entry a name such \
                         as name = \"sim-a\" ({} characters at most: a-z, 0-9, _ and -)",
                        MAX_NAME_LEN
                    ));
                };
                let name = ModemName::parse(name)
                    .or_else(|why| invalid(format!("modems[{index}].name {why}")))?;
                let key = format!("modems.{name}");
                checked(name, &key, modem)
            })
            .collect::<Result<Vec<_>, _>>()?,
        (single, None) => {
            let modem = single.unwrap_or_default();
            if let Some(name) = &modem.name {
                return invalid(format!(
                    "modem.name = {name:?}: [modem] is always named \"{SINGLE_MODEM_NAME}\"; to \
                     name modems, list them as [[modems]]"
                ));
            }
            let name =
                ModemName::parse(SINGLE_MODEM_NAME).expect("the single modem's name is valid");
            vec![checked(name, "modem", modem)?]
        }
    };
    for (index, modem) in pool.iter().enumerate() {
        if let Some(first) = pool[..index].iter().find(|other| other.name == modem.name) {
            return invalid(format!(
                "modems: two modems are named {:?}: names must be unique (they tell the modems \
                 apart in logs, metrics and the contacts' bindings)",
                first.name.as_str()
            ));
        }
        if let Some(first) = pool[..index]
            .iter()
            .find(|other| other.endpoint == modem.endpoint)
        {
            return invalid(format!(
                "modems.{}.port and modems.{}.port are both {}: one port serves one modem",
                first.name, modem.name, modem.endpoint
            ));
        }
    }
    Ok(pool)
}

/// Checks one modem's keys; `key` is how messages name it (`modem`, `modems.sim-a`).
fn checked(name: ModemName, key: &str, modem: ModemConfig) -> Result<PoolModem, ConfigError> {
    let endpoint = Endpoint::parse(&modem.port.to_string_lossy())
        .or_else(|why| invalid(format!("{key}.port {why}")))?;
    if modem.baud == 0 {
        return invalid(format!("{key}.baud must be a line speed such as 115200"));
    }
    if let Some(pin) = modem.pin.as_ref().map(Secret::expose) {
        if !pin.is_empty() && !(4..=8).contains(&pin.len())
            || !pin.chars().all(|c| c.is_ascii_digit())
        {
            return invalid(format!("{key}.pin must be 4 to 8 digits (or empty)"));
        }
    }
    let cap = |field: &str, value: Option<u32>| match value {
        None => Ok(None),
        Some(0) => invalid(format!(
            "{key}.{field} = 0 would never let {name} send: remove the key for no limit, or \
             give the most the carrier tolerates"
        )),
        Some(value) => Ok(NonZeroU32::new(value)),
    };
    let pacing = Limits {
        min_interval: modem.min_interval.unwrap_or_default(),
        jitter: modem.jitter.unwrap_or_default(),
        per_minute: cap("per_minute", modem.per_minute)?,
        per_hour: cap("per_hour", modem.per_hour)?,
        per_day: cap("per_day", modem.per_day)?,
        recipients_per_day: cap("recipients_per_day", modem.recipients_per_day)?,
    };
    let balance = BalanceCheck::from_keys(key, &modem).map_err(ConfigError::Invalid)?;
    Ok(PoolModem {
        name,
        endpoint,
        pacing,
        modem,
        balance,
    })
}

/// One line per modem and one for routing, for `check-config`.
pub(super) fn describe(pool: &[PoolModem], routing: &RoutingConfig) -> String {
    let mut text = String::new();
    let width = pool
        .iter()
        .map(|modem| modem.name.as_str().len())
        .max()
        .unwrap_or(0);
    for modem in pool {
        let line = match &modem.endpoint {
            Endpoint::Serial(_) => format!("{} at {} baud", modem.endpoint, modem.modem.baud),
            Endpoint::Tcp { .. } => format!("{} (ser2net, raw TCP)", modem.endpoint),
        };
        text.push_str(&format!(
            "  {:width$}  {line}; {}\n",
            modem.name.as_str(),
            describe_pacing(&modem.pacing)
        ));
    }
    let sticky = if routing.sticky {
        "sticky contacts"
    } else {
        "no sticky contacts (each message to the SIM that can send it soonest)"
    };
    let failover = match routing.failover_after {
        Some(after) => format!(
            "contacts move after {} unusable",
            humantime::format_duration(after)
        ),
        None => "contacts never move".to_owned(),
    };
    text.push_str(&format!("  routing: {sticky}; {failover}\n"));
    text
}

/// `"at least 4s apart + up to 2s, ≤ 10 parts a minute, …"` or `"no pacing"`.
pub fn describe_pacing(limits: &Limits) -> String {
    let mut parts = Vec::new();
    if !limits.min_interval.is_zero() || !limits.jitter.is_zero() {
        let mut spacing = format!(
            "sends at least {} apart",
            humantime::format_duration(limits.min_interval)
        );
        if !limits.jitter.is_zero() {
            spacing.push_str(&format!(
                " + up to {} jitter",
                humantime::format_duration(limits.jitter)
            ));
        }
        parts.push(spacing);
    }
    for (cap, unit) in [
        (limits.per_minute, "parts a minute"),
        (limits.per_hour, "parts an hour"),
        (limits.per_day, "parts a day"),
        (limits.recipients_per_day, "recipients a day"),
    ] {
        if let Some(cap) = cap {
            parts.push(format!("≤ {cap} {unit}"));
        }
    }
    if parts.is_empty() {
        "no pacing".to_owned()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::Config;
    use super::*;

    const RESPOND: &str = "[respond]\nchannel_id = \"c\"\napi_token = \"t\"\n";

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("{RESPOND}{extra}")).map_err(|error| error.to_string())
    }

    fn refused(extra: &str) -> String {
        match parse(extra) {
            Ok(config) => panic!("accepted: {extra}\n{:?}", config.pool()),
            Err(error) => error,
        }
    }

    const TWO: &str = r#"
        [[modems]]
        name = "sim-a"
        port = "/dev/serial/by-id/usb-Quectel-if02-port0"
        pin = "1234"
        min_interval = "4s"
        jitter = "2s"
        per_minute = 10
        per_hour = 300
        per_day = 1000
        recipients_per_day = 250

        [[modems]]
        name = "sim_b-2"
        port = "tcp://192.168.1.21:4001"
        send_timeout = "1m"
    "#;

    #[test]
    fn modem_is_a_pool_of_one_named_modem() {
        for extra in ["", "[modem]\nport = \"/dev/ttyUSB0\"\nbaud = 9600\n"] {
            let config = parse(extra).expect("parses");
            let [only] = config.pool() else {
                panic!("one modem: {:?}", config.pool());
            };
            assert_eq!(only.name.as_str(), "modem");
            assert_eq!(only.endpoint, Endpoint::Serial(config.modem.port.clone()));
            assert_eq!(only.modem.baud, config.modem.baud);
            assert!(only.pacing.is_unlimited());
        }
        let config = parse("").expect("parses");
        assert_eq!(
            config.pool()[0].endpoint,
            Endpoint::Serial(PathBuf::from("/dev/ttyUSB2"))
        );
        assert_eq!(config.routing, RoutingConfig::default());
    }

    #[test]
    fn modems_lists_named_modems_with_their_own_keys_and_pacing() {
        let config = parse(TWO).expect("parses");
        let names: Vec<&str> = config.pool().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["sim-a", "sim_b-2"]);
        let (a, b) = (&config.pool()[0], &config.pool()[1]);
        assert_eq!(a.modem.pin.as_ref().map(Secret::expose), Some("1234"));
        assert_eq!(
            a.pacing,
            Limits {
                min_interval: Duration::from_secs(4),
                jitter: Duration::from_secs(2),
                per_minute: NonZeroU32::new(10),
                per_hour: NonZeroU32::new(300),
                per_day: NonZeroU32::new(1000),
                recipients_per_day: NonZeroU32::new(250),
            }
        );
        assert_eq!(
            b.endpoint,
            Endpoint::Tcp {
                host: "192.168.1.21".into(),
                port: 4001
            }
        );
        assert_eq!(b.modem.send_timeout, Duration::from_secs(60));
        assert_eq!(b.modem.baud, 115_200, "defaults per modem");
        assert!(b.pacing.is_unlimited());
        // The code that still drives one modem sees the first.
        assert_eq!(config.modem.port, a.modem.port);
        assert_eq!(config.modem.name.as_deref(), Some("sim-a"));
    }

    #[test]
    fn the_single_modem_takes_pacing_too() {
        let config = parse("[modem]\nper_minute = 6\nmin_interval = \"5s\"\n").expect("parses");
        let pacing = config.pool()[0].pacing;
        assert_eq!(pacing.per_minute, NonZeroU32::new(6));
        assert_eq!(pacing.min_interval, Duration::from_secs(5));
    }

    #[test]
    fn modem_and_modems_together_are_refused() {
        let error = refused(&format!("[modem]\nport = \"/dev/ttyUSB0\"\n{TWO}"));
        assert!(error.contains("both [modem] and [[modems]]"), "{error}");
    }

    #[test]
    fn an_empty_pool_is_refused() {
        // A top-level key goes before the first table.
        let error = Config::parse(&format!("modems = []\n{RESPOND}"))
            .expect_err("no modem")
            .to_string();
        assert!(error.contains("modems is empty"), "{error}");
    }

    #[test]
    fn names_are_required_well_formed_and_unique() {
        let error =
            refused("[[modems]]\nname = \"a\"\nport = \"/dev/a\"\n[[modems]]\nport = \"/dev/b\"\n");
        assert!(error.contains("modems[1] has no name"), "{error}");
        for (name, why) in [
            ("", "is empty"),
            ("SIM-A", "'S'"),
            ("sim a", "' '"),
            ("sim.a", "'.'"),
            ("sím", "'í'"),
            ("sim/a", "'/'"),
            (&"x".repeat(33), "at most 32"),
        ] {
            let error = refused(&format!("[[modems]]\nname = {name:?}\nport = \"/dev/a\"\n"));
            assert!(
                error.contains("modems[0].name") && error.contains(why),
                "{name:?}: {error}"
            );
        }
        assert!(
            parse(&format!(
                "[[modems]]\nname = {:?}\nport = \"/dev/a\"\n",
                "a".repeat(32)
            ))
            .is_ok()
        );
        let error = refused(
            "[[modems]]\nname = \"sim-a\"\nport = \"/dev/a\"\n[[modems]]\nname = \"sim-a\"\nport = \"/dev/b\"\n",
        );
        assert!(error.contains("two modems are named \"sim-a\""), "{error}");
        let error = refused("[modem]\nname = \"sim-a\"\n");
        assert!(
            error.contains("modem.name") && error.contains("[[modems]]"),
            "{error}"
        );
    }

    #[test]
    fn two_modems_on_one_port_are_refused() {
        for (a, b) in [
            ("/dev/ttyUSB0", "/dev/ttyUSB0"),
            ("tcp://pi-2:4001", "TCP://Pi-2:4001"),
        ] {
            let error = refused(&format!(
                "[[modems]]\nname = \"a\"\nport = {a:?}\n[[modems]]\nname = \"b\"\nport = {b:?}\n"
            ));
            assert!(
                error.contains("modems.a.port and modems.b.port are both"),
                "{a} {b}: {error}"
            );
        }
        parse("[[modems]]\nname = \"a\"\nport = \"tcp://pi-2:4001\"\n[[modems]]\nname = \"b\"\nport = \"tcp://pi-2:4002\"\n")
            .expect("two ports of one ser2net");
    }

    #[test]
    fn malformed_ports_name_the_modem() {
        for (port, why) in [
            ("tcp://192.168.1.21", "port is missing"),
            ("tcp://192.168.1.21:0", "between 1 and 65535"),
            ("tcp://192.168.1.21:4001/x", "no path"),
            ("tcp://:4001", "host is missing"),
            ("telnet://192.168.1.21:4001", "raw tcp"),
            ("192.168.1.21:4001", "write tcp://192.168.1.21:4001"),
            ("", "is empty"),
        ] {
            let error = refused(&format!("[[modems]]\nname = \"sim-c\"\nport = {port:?}\n"));
            assert!(
                error.contains("modems.sim-c.port") && error.contains(why),
                "{port:?}: {error}"
            );
        }
        let error = refused("[modem]\nport = \"tcp://pi:http\"\n");
        assert!(
            error.contains("modem.port") && error.contains("not a number"),
            "{error}"
        );
    }

    #[test]
    fn line_settings_are_checked_per_modem() {
        for (extra, key) in [
            ("baud = 0", "modems.sim-b.baud"),
            ("pin = \"12ab\"", "modems.sim-b.pin"),
            ("pin = \"123\"", "modems.sim-b.pin"),
        ] {
            let error = refused(&format!(
                "[[modems]]\nname = \"sim-a\"\nport = \"/dev/a\"\n[[modems]]\nname = \"sim-b\"\nport = \"/dev/b\"\n{extra}\n"
            ));
            assert!(error.contains(key), "{extra}: {error}");
        }
    }

    #[test]
    fn zero_caps_are_refused_and_bad_values_named() {
        for key in ["per_minute", "per_hour", "per_day", "recipients_per_day"] {
            let error = refused(&format!(
                "[[modems]]\nname = \"sim-a\"\nport = \"/dev/a\"\n{key} = 0\n"
            ));
            assert!(
                error.contains(&format!("modems.sim-a.{key} = 0")),
                "{key}: {error}"
            );
            let error = refused(&format!("[modem]\n{key} = 0\n"));
            assert!(
                error.contains(&format!("modem.{key} = 0")),
                "{key}: {error}"
            );
            let error = refused(&format!("[modem]\n{key} = -5\n"));
            assert!(error.contains("line 5"), "{key}: {error}");
        }
        for key in ["min_interval", "jitter"] {
            let error = refused(&format!("[modem]\n{key} = \"4 parsecs\"\n"));
            assert!(error.contains("line 5"), "{key}: {error}");
        }
        let error = refused("[[modems]]\nname = \"a\"\nport = \"/dev/a\"\nper_minutes = 10\n");
        assert!(error.contains("per_minutes"), "{error}");
    }

    #[test]
    fn routing_defaults_and_values() {
        let config = parse(TWO).expect("parses");
        assert!(config.routing.sticky);
        assert_eq!(
            config.routing.failover_after,
            Some(Duration::from_secs(600))
        );
        let config = parse(&format!(
            "{TWO}\n[routing]\nsticky = false\nfailover_after = \"off\"\n"
        ))
        .expect("parses");
        assert!(!config.routing.sticky);
        assert_eq!(config.routing.failover_after, None);
        let config = parse("[routing]\nfailover_after = \"90s\"\n").expect("parses");
        assert_eq!(config.routing.failover_after, Some(Duration::from_secs(90)));
        for (value, why) in [
            ("\"0s\"", "first hiccup"),
            ("\"soon\"", "\"off\""),
            ("600", "\"10m\""),
            ("true", "\"off\""),
        ] {
            let error = refused(&format!("[routing]\nfailover_after = {value}\n"));
            assert!(
                error.contains("failover_after") && error.contains(why),
                "{value}: {error}"
            );
        }
        let error = refused("[routing]\nstiky = true\n");
        assert!(error.contains("stiky"), "{error}");
    }

    #[test]
    fn summaries_show_the_pool() {
        let config = parse(TWO).expect("parses");
        let summary = config.summary();
        assert!(summary.contains("2 modems (sim-a, sim_b-2)"), "{summary}");
        let pool = config.pool_summary();
        let lines: Vec<&str> = pool.lines().collect();
        assert_eq!(lines.len(), 3, "{pool}");
        assert!(
            lines[0].contains("sim-a")
                && lines[0].contains("usb-Quectel-if02-port0 at 115200 baud")
        );
        assert!(
            lines[0].contains("sends at least 4s apart + up to 2s jitter")
                && lines[0].contains("≤ 10 parts a minute")
                && lines[0].contains("≤ 250 recipients a day"),
            "{pool}"
        );
        assert!(
            lines[1].contains("sim_b-2")
                && lines[1].contains("tcp://192.168.1.21:4001 (ser2net, raw TCP)")
                && lines[1].contains("no pacing"),
            "{pool}"
        );
        assert!(
            lines[2].contains("sticky contacts") && lines[2].contains("after 10m"),
            "{pool}"
        );
        assert!(!pool.contains("1234"), "the PIN is never shown: {pool}");
        let single = parse("").expect("parses").summary();
        assert!(
            single.contains("modem /dev/ttyUSB2 at 115200 baud"),
            "{single}"
        );
    }
}
