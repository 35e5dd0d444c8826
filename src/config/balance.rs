//! The balance keys of a modem (`balance_ussd`, `balance_interval`, `balance_pattern`,
//! `low_balance`), checked into a [`BalanceCheck`], and reading the amount out of the
//! operator's answer with the pattern.
//!
//! It does not ask the network; the modem driver does (`crate::modem`), on this schedule.

use std::fmt;
use std::time::Duration;

use regex_lite::Regex;

use super::ModemConfig;

/// The shortest interval between two balance requests: operators bar SIMs that flood USSD.
pub const MIN_BALANCE_INTERVAL: Duration = Duration::from_secs(60);

/// One modem's balance check, checked.
#[derive(Clone)]
pub struct BalanceCheck {
    /// The USSD code (`*100#`).
    pub code: String,
    pub interval: Duration,
    /// The first group is the amount; `None`: the first number in the answer.
    pub pattern: Option<Regex>,
    /// `/health` is degraded below this amount.
    pub low: Option<f64>,
}

impl fmt::Debug for BalanceCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalanceCheck")
            .field("code", &self.code)
            .field("interval", &self.interval)
            .field("pattern", &self.pattern.as_ref().map(Regex::as_str))
            .field("low", &self.low)
            .finish()
    }
}

impl BalanceCheck {
    /// The check `modem`'s keys describe (`None` without `balance_ussd`); `key` names the
    /// modem in messages (`modem`, `modems.sim-a`).
    pub fn from_keys(key: &str, modem: &ModemConfig) -> Result<Option<Self>, String> {
        let Some(code) = modem.balance_ussd.as_deref().map(str::trim) else {
            if modem.balance_pattern.is_some() || modem.low_balance.is_some() {
                return Err(format!(
                    "{key}.balance_pattern and {key}.low_balance need {key}.balance_ussd, the \
                     code that asks for the balance (such as \"*100#\")"
                ));
            }
            return Ok(None);
        };
        crate::at::ussd::request(code, 15).map_err(|why| format!("{key}.balance_ussd: {why}"))?;
        if modem.balance_interval < MIN_BALANCE_INTERVAL {
            return Err(format!(
                "{key}.balance_interval must be at least {} (operators bar SIMs that ask too \
                 often; \"12h\" is usual)",
                humantime::format_duration(MIN_BALANCE_INTERVAL)
            ));
        }
        let pattern = match modem.balance_pattern.as_deref() {
            None => None,
            Some(text) => {
                let regex = Regex::new(text).map_err(|error| {
                    format!("{key}.balance_pattern is not a regular expression: {error}")
                })?;
                if regex.captures_len() < 2 {
                    return Err(format!(
                        "{key}.balance_pattern needs a group around the amount, such as \
                         \"balance is ([0-9.]+)\""
                    ));
                }
                Some(regex)
            }
        };
        if let Some(low) = modem.low_balance {
            if !low.is_finite() {
                return Err(format!("{key}.low_balance must be a number such as 5.0"));
            }
        }
        Ok(Some(Self {
            code: code.to_owned(),
            interval: modem.balance_interval,
            pattern,
            low: modem.low_balance,
        }))
    }

    /// The amount in `answer`: the pattern's first group, or the first number when there is
    /// no pattern. A decimal comma (`12,50`) is read as a point.
    pub fn amount(&self, answer: &str) -> Option<f64> {
        let found = match &self.pattern {
            Some(pattern) => pattern.captures(answer)?.get(1)?.as_str().to_owned(),
            None => first_number(answer)?,
        };
        parse_amount(&found)
    }
}

/// The first run of digits in `text`, with its decimals and a leading minus.
fn first_number(text: &str) -> Option<String> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let negative = text[..start].ends_with('-');
    let rest: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ','))
        .collect();
    let rest = rest.trim_end_matches(['.', ',']);
    Some(if negative {
        format!("-{rest}")
    } else {
        rest.to_owned()
    })
}

/// `12.50`, `12,50`, `1,234.50`, `1.234,50` → a number.
fn parse_amount(text: &str) -> Option<f64> {
    let text = text.trim();
    let cleaned = match (text.rfind('.'), text.rfind(',')) {
        (Some(dot), Some(comma)) if comma > dot => text.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => text.replace(',', ""),
        (None, Some(comma)) if text.len() - comma - 1 == 3 && text[..comma].len() <= 3 => {
            // "1,234": a thousands separator.
            text.replace(',', "")
        }
        (None, Some(_)) => text.replace(',', "."),
        _ => text.to_owned(),
    };
    cleaned
        .parse::<f64>()
        .ok()
        .filter(|amount| amount.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: Option<&str>, pattern: Option<&str>) -> Result<Option<BalanceCheck>, String> {
        let modem = ModemConfig {
            balance_ussd: code.map(str::to_owned),
            balance_pattern: pattern.map(str::to_owned),
            ..ModemConfig::default()
        };
        BalanceCheck::from_keys("modem", &modem)
    }

    #[test]
    fn keys_are_checked() {
        assert!(check(None, None).expect("none").is_none());
        let found = check(Some("*100#"), None).expect("ok").expect("some");
        assert_eq!(found.interval, Duration::from_secs(12 * 3600));
        assert!(
            check(Some("*100#;ATD"), None)
                .unwrap_err()
                .contains("balance_ussd")
        );
        assert!(
            check(Some("*100#"), Some("("))
                .unwrap_err()
                .contains("not a regular")
        );
        assert!(
            check(Some("*100#"), Some("balance"))
                .unwrap_err()
                .contains("group")
        );
        assert!(
            check(None, Some("(x)"))
                .unwrap_err()
                .contains("need modem.balance_ussd")
        );
        let modem = ModemConfig {
            balance_ussd: Some("*100#".into()),
            balance_interval: Duration::from_secs(5),
            ..ModemConfig::default()
        };
        assert!(
            BalanceCheck::from_keys("modem", &modem)
                .unwrap_err()
                .contains("at least")
        );
    }

    const RESPOND: &str = "[respond]\nchannel_id = \"c\"\napi_token = \"t\"\n";

    #[test]
    fn every_modem_of_a_pool_has_its_own_balance_keys() {
        let text = format!(
            r#"{RESPOND}
            [[modems]]
            name = "sim-a"
            port = "/dev/ttyUSB0"
            balance_ussd = "*100#"
            balance_interval = "6h"
            balance_pattern = "Baki RM([0-9.]+)"
            low_balance = 5.0

            [[modems]]
            name = "sim-b"
            port = "/dev/ttyUSB1"
            "#
        );
        let config = crate::config::Config::parse(&text).expect("parses");
        let a = config.pool()[0].balance.as_ref().expect("sim-a checks");
        assert_eq!(a.code, "*100#");
        assert_eq!(a.interval, Duration::from_secs(6 * 3600));
        assert_eq!(a.low, Some(5.0));
        assert_eq!(a.amount("Baki RM7.10 sah"), Some(7.1));
        assert!(config.pool()[1].balance.is_none());
        // The single modem's defaults: 12 h.
        let single = format!("{RESPOND}[modem]\nbalance_ussd = \"*124#\"\n");
        let config = crate::config::Config::parse(&single).expect("parses");
        let check = config.pool()[0].balance.as_ref().expect("check");
        assert_eq!(check.interval, Duration::from_secs(12 * 3600));
        // A bad pattern names its modem.
        let bad = text.replace("Baki RM([0-9.]+)", "Baki RM([0-9.]+");
        let error = crate::config::Config::parse(&bad)
            .expect_err("refused")
            .to_string();
        assert!(error.contains("modems.sim-a.balance_pattern"), "{error}");
    }

    #[test]
    fn amounts_are_read_with_and_without_a_pattern() {
        let plain = check(Some("*100#"), None).expect("ok").expect("some");
        let answer = "Your balance is 12.50 USD. Valid until 31-12-2026.";
        assert_eq!(plain.amount(answer), Some(12.5));
        assert_eq!(plain.amount("Saldo: RM3,20"), Some(3.2));
        assert_eq!(plain.amount("Balance -1.5 EUR"), Some(-1.5));
        assert_eq!(plain.amount("no number"), None);
        let dated = check(Some("*100#"), Some(r"Valid until (\d+)"))
            .expect("ok")
            .expect("some");
        assert_eq!(dated.amount(answer), Some(31.0));
        let euro = check(Some("*100#"), Some(r"([\d.,]+) EUR"))
            .expect("ok")
            .expect("some");
        assert_eq!(euro.amount("Guthaben 1.234,56 EUR"), Some(1234.56));
        assert_eq!(euro.amount("Balance 1,234 EUR"), Some(1234.0));
        assert_eq!(euro.amount("nothing here"), None);
    }
}
