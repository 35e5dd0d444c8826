//! Splits one AT command line into its commands, as ITU-T V.250 §5.2–5.4 lays them out: the
//! `AT` prefix, basic commands (`E0`, `Z`, `&F`) run together, and extended commands (`+CMGF=0`)
//! separated by `;`, each an action, a read (`?`), a test (`=?`) or a set (`=a,"b",c`).
//!
//! It only parses; what a command means is the interpreter's business.

/// One command of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    /// A basic command: its name (`E`, `&F`) upper-cased and its number, if any.
    Basic { name: String, value: Option<u32> },
    /// An extended command: its name with the prefix (`+CMGS`, `^CURC`) upper-cased, and how it
    /// was called.
    Extended { name: String, call: Call },
}

/// How an extended command was called (V.250 §5.4.2–5.4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    /// `AT+X`
    Action,
    /// `AT+X?`
    Read,
    /// `AT+X=?`
    Test,
    /// `AT+X=a,b`
    Set(Vec<Arg>),
}

/// One parameter of a set command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    /// Left out (`AT+CNMI=2,,0`).
    Empty,
    /// A quoted string, quotes removed.
    Quoted(String),
    /// Anything else, as written (upper-cased).
    Bare(String),
}

impl Arg {
    /// The parameter as a number, if it is one.
    pub(super) fn number(&self) -> Option<u32> {
        match self {
            Arg::Bare(text) => text.parse().ok(),
            _ => None,
        }
    }

    /// The parameter as text: the string of a quoted one, the raw text of a bare one.
    pub(super) fn text(&self) -> Option<&str> {
        match self {
            Arg::Quoted(text) | Arg::Bare(text) => Some(text),
            Arg::Empty => None,
        }
    }
}

/// Why a command line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ParseError {
    /// The line does not start with `AT`.
    #[error("the line does not start with AT")]
    NoPrefix,
    /// A character that starts no command.
    #[error("unexpected {0:?} at byte {1}")]
    Unexpected(char, usize),
    /// A string is not closed.
    #[error("unterminated string")]
    Unterminated,
}

/// Parses one command line (without its final `\r`).
pub(super) fn parse_line(line: &str) -> Result<Vec<Command>, ParseError> {
    let line = line.trim();
    let prefix = line.get(..2).ok_or(ParseError::NoPrefix)?;
    if !prefix.eq_ignore_ascii_case("AT") {
        return Err(ParseError::NoPrefix);
    }
    let chars: Vec<char> = line[2..].chars().collect();
    let mut commands = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let c = chars[at];
        if c == ' ' || c == ';' {
            at += 1;
        } else if c == '+' || c == '^' || c == '$' || c == '#' || c == '%' {
            let (command, next) = parse_extended(&chars, at)?;
            commands.push(command);
            at = next;
        } else if c.is_ascii_alphabetic() || c == '&' {
            let mut name = c.to_ascii_uppercase().to_string();
            at += 1;
            if c == '&' {
                let letter = chars
                    .get(at)
                    .filter(|l| l.is_ascii_alphabetic())
                    .ok_or(ParseError::Unexpected(c, at + 2))?;
                name.push(letter.to_ascii_uppercase());
                at += 1;
            }
            let digits: String = chars[at..]
                .iter()
                .take_while(|d| d.is_ascii_digit())
                .collect();
            at += digits.len();
            commands.push(Command::Basic {
                name,
                value: digits.parse().ok(),
            });
        } else {
            return Err(ParseError::Unexpected(c, at + 2));
        }
    }
    Ok(commands)
}

/// Parses an extended command starting at `start`; returns it and where the next one starts.
fn parse_extended(chars: &[char], start: usize) -> Result<(Command, usize), ParseError> {
    let mut at = start + 1;
    while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '_') {
        at += 1;
    }
    let name: String = chars[start..at]
        .iter()
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let rest = &chars[at..];
    let call = if rest.starts_with(&['=', '?']) {
        at += 2;
        Call::Test
    } else if rest.starts_with(&['?']) {
        at += 1;
        Call::Read
    } else if rest.starts_with(&['=']) {
        at += 1;
        let (args, next) = parse_args(chars, at)?;
        at = next;
        Call::Set(args)
    } else {
        Call::Action
    };
    Ok((Command::Extended { name, call }, at))
}

/// Parses `a,"b",,c` up to the `;` or the end of the line.
fn parse_args(chars: &[char], mut at: usize) -> Result<(Vec<Arg>, usize), ParseError> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted: Option<String> = None;
    loop {
        let Some(&c) = chars.get(at) else {
            args.push(finish_arg(&mut current, quoted.take()));
            return Ok((args, at));
        };
        match c {
            '"' => {
                let close = chars[at + 1..]
                    .iter()
                    .position(|&q| q == '"')
                    .ok_or(ParseError::Unterminated)?;
                quoted = Some(chars[at + 1..at + 1 + close].iter().collect());
                at += close + 2;
            }
            ',' => {
                args.push(finish_arg(&mut current, quoted.take()));
                at += 1;
            }
            ';' => {
                args.push(finish_arg(&mut current, quoted.take()));
                return Ok((args, at + 1));
            }
            ' ' => at += 1,
            other => {
                current.push(other.to_ascii_uppercase());
                at += 1;
            }
        }
    }
}

fn finish_arg(current: &mut String, quoted: Option<String>) -> Arg {
    let bare = std::mem::take(current);
    match quoted {
        Some(text) => Arg::Quoted(text),
        None if bare.is_empty() => Arg::Empty,
        None => Arg::Bare(bare),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(name: &str, call: Call) -> Command {
        Command::Extended {
            name: name.to_string(),
            call,
        }
    }

    fn basic(name: &str, value: Option<u32>) -> Command {
        Command::Basic {
            name: name.to_string(),
            value,
        }
    }

    #[test]
    fn table() {
        let bare = |s: &str| Arg::Bare(s.to_string());
        let quoted = |s: &str| Arg::Quoted(s.to_string());
        let cases: Vec<(&str, Vec<Command>)> = vec![
            ("AT", vec![]),
            ("at", vec![]),
            ("ATE0", vec![basic("E", Some(0))]),
            ("ATE", vec![basic("E", None)]),
            (
                "ATE0V1&F",
                vec![basic("E", Some(0)), basic("V", Some(1)), basic("&F", None)],
            ),
            ("ATI", vec![basic("I", None)]),
            ("AT+CPIN?", vec![ext("+CPIN", Call::Read)]),
            ("AT+CNMI=?", vec![ext("+CNMI", Call::Test)]),
            ("AT+CGMI", vec![ext("+CGMI", Call::Action)]),
            (
                "AT+CNMI=2,1,,0,0",
                vec![ext(
                    "+CNMI",
                    Call::Set(vec![bare("2"), bare("1"), Arg::Empty, bare("0"), bare("0")]),
                )],
            ),
            (
                "AT+CPMS=\"SM\",\"sm\"",
                vec![ext("+CPMS", Call::Set(vec![quoted("SM"), quoted("sm")]))],
            ),
            (
                "AT+CPIN=\"1234\",\"4321\"",
                vec![ext(
                    "+CPIN",
                    Call::Set(vec![quoted("1234"), quoted("4321")]),
                )],
            ),
            (
                "AT+CMGF=0;+CMEE=1",
                vec![
                    ext("+CMGF", Call::Set(vec![bare("0")])),
                    ext("+CMEE", Call::Set(vec![bare("1")])),
                ],
            ),
            (
                "ATE0;+CSQ",
                vec![basic("E", Some(0)), ext("+CSQ", Call::Action)],
            ),
            ("AT^CURC=0", vec![ext("^CURC", Call::Set(vec![bare("0")]))]),
            (
                "AT+CSCA=\"+60,1\"",
                vec![ext("+CSCA", Call::Set(vec![quoted("+60,1")]))],
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(parse_line(line), Ok(expected), "{line}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(parse_line("hello"), Err(ParseError::NoPrefix));
        assert_eq!(parse_line(""), Err(ParseError::NoPrefix));
        assert_eq!(parse_line("AT+CPIN=\"12"), Err(ParseError::Unterminated));
        assert!(matches!(
            parse_line("AT!"),
            Err(ParseError::Unexpected('!', 2))
        ));
    }

    #[test]
    fn args() {
        assert_eq!(Arg::Bare("12".into()).number(), Some(12));
        assert_eq!(Arg::Quoted("12".into()).number(), None);
        assert_eq!(Arg::Empty.text(), None);
        assert_eq!(Arg::Quoted("SM".into()).text(), Some("SM"));
    }
}
