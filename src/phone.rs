//! E.164 phone numbers: the contact IDs of a *Phone Number* Custom Channel.
//!
//! [`E164::parse`] checks what respond.io sends us (`+` then 8 to 15 digits, ITU-T E.164 §6);
//! [`normalise_sender`] turns the sender address of an incoming SMS into E.164 using the
//! configured default country. It deliberately does not validate numbering plans: a number the
//! network delivered is by definition reachable, and a plan table would go stale on a Pi that
//! is never updated.

use std::fmt;

/// A phone number in E.164 form, with its leading `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct E164(String);

/// Why a string is not an E.164 number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("must start with '+' followed by the country code, e.g. +60177872890")]
    NoPlus,
    #[error("may contain only digits after the '+'")]
    NotDigits,
    #[error("must have 8 to 15 digits after the '+' (E.164), not {0}")]
    Length(usize),
    #[error("a country code never starts with 0")]
    LeadingZero,
}

impl E164 {
    /// Parses `+` followed by 8–15 digits, the first not `0`. Spaces are not accepted: respond.io
    /// sends contact IDs in exactly this form.
    pub fn parse(text: &str) -> Result<Self, PhoneError> {
        let digits = text.strip_prefix('+').ok_or(PhoneError::NoPlus)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneError::NotDigits);
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(PhoneError::Length(digits.len()));
        }
        if digits.starts_with('0') {
            return Err(PhoneError::LeadingZero);
        }
        Ok(Self(text.to_owned()))
    }

    /// The number with its `+`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+`, as an SMS address of type international carries them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A number masked for `info` logs: country code and last two digits kept (`+60*******90`).
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    let keep_front = if chars[0] == '+' { 3 } else { 2 };
    let hidden = chars.len() - keep_front - 2;
    let mut masked: String = chars[..keep_front].iter().collect();
    masked.push_str(&"*".repeat(hidden));
    masked.extend(&chars[chars.len() - 2..]);
    masked
}

/// Turns the digits of a national (or unknown-type) sender into E.164 for `country`.
///
/// The trunk prefix (`0` in most countries, `1` in the NANP, `8` in Russia …) is removed when
/// present; a number that already starts with the country code and has no trunk prefix (some
/// networks send international numbers as "unknown") is kept as it is. Returns `None` when the
/// result would not be a plausible E.164 number (short codes such as `22556`).
pub fn normalise_sender(national: &str, country: &str) -> Option<E164> {
    let digits: String = national.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != national.trim_start_matches('+').len() {
        return None;
    }
    if let Some(international) = digits.strip_prefix("00") {
        return E164::parse(&format!("+{international}")).ok();
    }
    let (code, trunk) = country_info(country)?;
    let candidate = match digits.strip_prefix(trunk).filter(|_| !trunk.is_empty()) {
        Some(rest) => format!("+{code}{rest}"),
        None if digits.starts_with(code) && digits.len() > 10 => format!("+{digits}"),
        None => format!("+{code}{digits}"),
    };
    // Short codes (5–6 digits) become too short for E.164 and are left alone by the caller.
    if digits.len() < 7 {
        return None;
    }
    E164::parse(&candidate).ok()
}

/// The country calling code of an ISO 3166 alpha-2 country, e.g. `"60"` for `"MY"`.
pub fn calling_code(country: &str) -> Option<&'static str> {
    country_info(country).map(|(code, _)| code)
}

/// (calling code, trunk prefix) for a country. Sources: ITU-T E.164 assigned codes and the ITU
/// national numbering plan notifications; an empty trunk prefix means numbers are dialled
/// nationally with no prefix to strip.
fn country_info(country: &str) -> Option<(&'static str, &'static str)> {
    COUNTRIES
        .iter()
        .find(|(iso, _, _)| iso.eq_ignore_ascii_case(country))
        .map(|&(_, code, trunk)| (code, trunk))
}

#[rustfmt::skip]
static COUNTRIES: &[(&str, &str, &str)] = &[
    ("AD","376",""),("AE","971","0"),("AF","93","0"),("AG","1","1"),("AI","1","1"),("AL","355","0"),
    ("AM","374","0"),("AO","244",""),("AR","54","0"),("AS","1","1"),("AT","43","0"),("AU","61","0"),
    ("AW","297",""),("AZ","994","0"),("BA","387","0"),("BB","1","1"),("BD","880","0"),("BE","32","0"),
    ("BF","226",""),("BG","359","0"),("BH","973",""),("BI","257",""),("BJ","229",""),("BM","1","1"),
    ("BN","673",""),("BO","591","0"),("BR","55","0"),("BS","1","1"),("BT","975",""),("BW","267",""),
    ("BY","375","8"),("BZ","501",""),("CA","1","1"),("CD","243","0"),("CF","236",""),("CG","242",""),
    ("CH","41","0"),("CI","225",""),("CL","56",""),("CM","237",""),("CN","86","0"),("CO","57",""),
    ("CR","506",""),("CU","53","0"),("CV","238",""),("CY","357",""),("CZ","420",""),("DE","49","0"),
    ("DJ","253",""),("DK","45",""),("DM","1","1"),("DO","1","1"),("DZ","213","0"),("EC","593","0"),
    ("EE","372",""),("EG","20","0"),("ER","291","0"),("ES","34",""),("ET","251","0"),("FI","358","0"),
    ("FJ","679",""),("FM","691",""),("FO","298",""),("FR","33","0"),("GA","241",""),("GB","44","0"),
    ("GD","1","1"),("GE","995","0"),("GH","233","0"),("GI","350",""),("GL","299",""),("GM","220",""),
    ("GN","224",""),("GQ","240",""),("GR","30",""),("GT","502",""),("GU","1","1"),("GW","245",""),
    ("GY","592",""),("HK","852",""),("HN","504",""),("HR","385","0"),("HT","509",""),("HU","36","06"),
    ("ID","62","0"),("IE","353","0"),("IL","972","0"),("IN","91","0"),("IQ","964","0"),("IR","98","0"),
    ("IS","354",""),("IT","39",""),("JM","1","1"),("JO","962","0"),("JP","81","0"),("KE","254","0"),
    ("KG","996","0"),("KH","855","0"),("KI","686",""),("KM","269",""),("KN","1","1"),("KP","850","0"),
    ("KR","82","0"),("KW","965",""),("KY","1","1"),("KZ","7","8"),("LA","856","0"),("LB","961","0"),
    ("LC","1","1"),("LI","423",""),("LK","94","0"),("LR","231","0"),("LS","266",""),("LT","370","8"),
    ("LU","352",""),("LV","371",""),("LY","218","0"),("MA","212","0"),("MC","377",""),("MD","373","0"),
    ("ME","382","0"),("MG","261","0"),("MH","692",""),("MK","389","0"),("ML","223",""),("MM","95","0"),
    ("MN","976","0"),("MO","853",""),("MP","1","1"),("MR","222",""),("MS","1","1"),("MT","356",""),
    ("MU","230",""),("MV","960",""),("MW","265","0"),("MX","52",""),("MY","60","0"),("MZ","258",""),
    ("NA","264","0"),("NC","687",""),("NE","227",""),("NG","234","0"),("NI","505",""),("NL","31","0"),
    ("NO","47",""),("NP","977","0"),("NR","674",""),("NZ","64","0"),("OM","968",""),("PA","507",""),
    ("PE","51","0"),("PF","689",""),("PG","675",""),("PH","63","0"),("PK","92","0"),("PL","48",""),
    ("PR","1","1"),("PS","970","0"),("PT","351",""),("PW","680",""),("PY","595","0"),("QA","974",""),
    ("RE","262","0"),("RO","40","0"),("RS","381","0"),("RU","7","8"),("RW","250",""),("SA","966","0"),
    ("SB","677",""),("SC","248",""),("SD","249","0"),("SE","46","0"),("SG","65",""),("SI","386","0"),
    ("SK","421","0"),("SL","232","0"),("SM","378",""),("SN","221",""),("SO","252","0"),("SR","597",""),
    ("SS","211","0"),("ST","239",""),("SV","503",""),("SY","963","0"),("SZ","268",""),("TC","1","1"),
    ("TD","235",""),("TG","228",""),("TH","66","0"),("TJ","992","8"),("TL","670",""),("TM","993","8"),
    ("TN","216",""),("TO","676",""),("TR","90","0"),("TT","1","1"),("TW","886","0"),("TZ","255","0"),
    ("UA","380","0"),("UG","256","0"),("US","1","1"),("UY","598","0"),("UZ","998","8"),("VA","39",""),
    ("VC","1","1"),("VE","58","0"),("VG","1","1"),("VI","1","1"),("VN","84","0"),("VU","678",""),
    ("WS","685",""),("XK","383","0"),("YE","967","0"),("ZA","27","0"),("ZM","260","0"),("ZW","263","0"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e164_accepts_and_refuses() {
        assert_eq!(
            E164::parse("+60177872890").map(|n| n.digits().to_owned()),
            Ok("60177872890".into())
        );
        assert_eq!(E164::parse("60177872890"), Err(PhoneError::NoPlus));
        assert_eq!(E164::parse("+6017-787"), Err(PhoneError::NotDigits));
        assert_eq!(E164::parse("+1234567"), Err(PhoneError::Length(7)));
        assert_eq!(
            E164::parse("+1234567890123456"),
            Err(PhoneError::Length(16))
        );
        assert_eq!(E164::parse("+0123456789"), Err(PhoneError::LeadingZero));
    }

    #[test]
    fn national_numbers_gain_the_country_code() {
        let cases = [
            ("0177872890", "MY", Some("+60177872890")),
            ("07700900123", "GB", Some("+447700900123")),
            ("3123456789", "IT", Some("+393123456789")),
            ("89161234567", "RU", Some("+79161234567")),
            ("12025550123", "US", Some("+12025550123")),
            ("2025550123", "US", Some("+12025550123")),
            ("0060177872890", "GB", Some("+60177872890")),
            ("60177872890", "MY", Some("+60177872890")),
            ("22556", "MY", None),
            ("12ab", "MY", None),
        ];
        for (national, country, want) in cases {
            let got = normalise_sender(national, country).map(|n| n.to_string());
            assert_eq!(got.as_deref(), want, "{national} in {country}");
        }
    }

    #[test]
    fn masking_keeps_only_the_ends() {
        assert_eq!(mask("+60177872890"), "+60*******90");
        assert_eq!(mask("0177872890"), "01******90");
        assert_eq!(mask("1234"), "****");
    }

    #[test]
    fn every_country_code_is_digits() {
        for (iso, code, trunk) in COUNTRIES {
            assert_eq!(iso.len(), 2, "{iso}");
            assert!(code.bytes().all(|b| b.is_ascii_digit()), "{iso}");
            assert!(trunk.bytes().all(|b| b.is_ascii_digit()), "{iso}");
        }
    }
}
