//! Compatibility with the seed UCX fault-injector client, so existing scripts keep working: its JSON command
//! objects (`faultline send '{"command":"set_strategy","pattern":"XOX","error_codes":[-4,-15]}'`) become the same
//! [`Request`]s the subcommands build. (Its spellings `record-toggle`, `record-dump`, `record-dump-count` and
//! `record-clear` are hidden subcommands of the binary.)

use serde_json::Value;

use crate::actions::{Change, ReplaySource, Switch};
use crate::error::Error;
use crate::recording::DumpFormat;
use crate::request::Request;

/// The seed's command names that [`parse_seed_command`] accepts (plus `enable` / `disable`).
pub const SEED_COMMANDS: &[&str] = &[
    "set_strategy",
    "set_error_codes",
    "set_probability",
    "toggle",
    "enable",
    "disable",
    "reset",
    "status",
    "toggle_recording",
    "dump_recording",
    "clear_recording",
    "replay_recording",
];

/// Translates one seed JSON command object into a request.
///
/// - `set_strategy {pattern, error_codes?}`: `pattern` is `random` or X/O;
/// - `set_error_codes {error_codes}`, `set_probability {probability}` (percent, a number);
/// - `toggle`, `enable`, `disable`, `reset`, `status`;
/// - `toggle_recording {enabled?}` (true/false), `dump_recording {format?, count?}`, `clear_recording`,
///   `replay_recording {loop?}` (true/false; replays each process's own recording).
///
/// Codes may be numbers or names, as a JSON array or a comma-separated string. A key the command does not take, or
/// a value of the wrong JSON type, is refused (a dropped `"pid"` would send the command to every process).
pub fn parse_seed_command(text: &str) -> Result<Request, Error> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::usage(format!("not a JSON command object ({e}): {}", shorten(text))))?;
    let Value::Object(object) = value else {
        return Err(Error::usage(format!("not a JSON command object: {}", shorten(text))));
    };
    let command = match object.get("command") {
        Some(Value::String(command)) => command.as_str(),
        _ => return Err(Error::usage(format!("missing \"command\" (one of {})", SEED_COMMANDS.join(", ")))),
    };
    let Some(keys) = keys_of(command) else { return Err(unknown_command(command)) };
    if let Some(key) = object.keys().find(|key| *key != "command" && !keys.contains(&key.as_str())) {
        return Err(unknown_key(command, key, keys));
    }
    let field = |name: &'static str| Field { command, name, value: object.get(name).filter(|v| !v.is_null()) };
    let change = match command {
        "set_strategy" => {
            Change::strategy(&field("pattern").required(Field::string)?, field("error_codes").codes()?.as_deref())?
        }
        "set_error_codes" => Change::ErrorCodes(field("error_codes").required(Field::codes)?),
        "set_probability" => Change::probability(&field("probability").required(Field::number)?)?,
        "toggle" => Change::Enabled(Switch::Toggle),
        "enable" => Change::Enabled(Switch::On),
        "disable" => Change::Enabled(Switch::Off),
        "reset" => Change::Reset,
        "status" => return Ok(Request::Status),
        "toggle_recording" => match field("enabled").boolean()? {
            Some(true) => Change::Recording(Switch::On),
            Some(false) => Change::Recording(Switch::Off),
            None => Change::Recording(Switch::Toggle),
        },
        "dump_recording" => {
            let format = field("format").string()?;
            return Ok(Request::Dump {
                format: format.as_deref().map_or(Ok(DumpFormat::Summary), DumpFormat::parse)?,
                count: field("count").count()?,
                output: None,
            });
        }
        "clear_recording" => Change::ClearRecording,
        "replay_recording" => {
            Change::Replay { source: ReplaySource::OwnRecording, looping: field("loop").boolean()?.unwrap_or(false) }
        }
        other => return Err(unknown_command(other)),
    };
    Ok(Request::Change(change))
}

/// The keys `command` takes besides `"command"`; `None` for an unknown command.
fn keys_of(command: &str) -> Option<&'static [&'static str]> {
    Some(match command {
        "set_strategy" => &["pattern", "error_codes"],
        "set_error_codes" => &["error_codes"],
        "set_probability" => &["probability"],
        "toggle_recording" => &["enabled"],
        "dump_recording" => &["format", "count"],
        "replay_recording" => &["loop"],
        "toggle" | "enable" | "disable" | "reset" | "status" | "clear_recording" => &[],
        _ => return None,
    })
}

fn unknown_command(command: &str) -> Error {
    Error::usage(format!("unknown command '{command}' (known: {})", SEED_COMMANDS.join(", ")))
}

fn unknown_key(command: &str, key: &str, keys: &[&str]) -> Error {
    let takes = if keys.is_empty() {
        "it takes no other key".to_string()
    } else {
        format!("it takes {}", keys.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", "))
    };
    let hint = if key == "pid" { "; choose processes with --pid" } else { "" };
    Error::usage(format!("{command}: unknown key \"{}\" ({takes}){hint}", shorten(key)))
}

/// One field of a command object (`None` when absent or null).
struct Field<'a> {
    command: &'a str,
    name: &'static str,
    value: Option<&'a Value>,
}

impl Field<'_> {
    fn wrong_type(&self, expected: &str, value: &Value) -> Error {
        Error::usage(format!(
            "{}: \"{}\" must be {expected}, not {}",
            self.command,
            self.name,
            shorten(&value.to_string())
        ))
    }

    /// A JSON string.
    fn string(&self) -> Result<Option<String>, Error> {
        match self.value {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(other) => Err(self.wrong_type("a string", other)),
        }
    }

    /// A JSON number in decimal notation, `1e-5` as `0.00001` (the shared parsers check its range and step).
    fn number(&self) -> Result<Option<String>, Error> {
        match self.value {
            None => Ok(None),
            Some(Value::Number(number)) => Ok(Some(match number.as_f64() {
                Some(float) if number.is_f64() => float.to_string(),
                _ => number.to_string(),
            })),
            Some(other) => Err(self.wrong_type("a number", other)),
        }
    }

    /// `true` or `false`.
    fn boolean(&self) -> Result<Option<bool>, Error> {
        match self.value {
            None => Ok(None),
            Some(Value::Bool(on)) => Ok(Some(*on)),
            Some(other) => Err(self.wrong_type("true or false", other)),
        }
    }

    /// A whole number ≥ 0.
    fn count(&self) -> Result<Option<u64>, Error> {
        match self.value {
            None => Ok(None),
            Some(Value::Number(number)) if number.is_u64() => Ok(number.as_u64()),
            Some(other) => Err(self.wrong_type("a whole number ≥ 0", other)),
        }
    }

    /// Error codes: an array of numbers and names, or a comma-separated string; as the text a user would type.
    fn codes(&self) -> Result<Option<String>, Error> {
        let expected = "an array of codes (numbers or names) or a comma-separated string";
        let code = |value: &Value| match value {
            Value::Number(number) => Ok(number.to_string()),
            Value::String(name) => Ok(name.clone()),
            other => Err(self.wrong_type(expected, other)),
        };
        match self.value {
            None => Ok(None),
            Some(Value::String(list)) => Ok(Some(list.clone())),
            Some(Value::Array(items)) => Ok(Some(items.iter().map(code).collect::<Result<Vec<_>, _>>()?.join(","))),
            Some(other) => Err(self.wrong_type(expected, other)),
        }
    }

    /// The field's value, or an error naming it when absent.
    fn required<T>(&self, get: impl Fn(&Self) -> Result<Option<T>, Error>) -> Result<T, Error> {
        get(self)?.ok_or_else(|| Error::usage(format!("{} needs \"{}\"", self.command, self.name)))
    }
}

fn shorten(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(text: &str) -> Change {
        match parse_seed_command(text) {
            Ok(Request::Change(change)) => change,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn the_seed_examples_translate_to_the_same_changes_as_the_commands() {
        assert_eq!(
            change(r#"{"command": "set_strategy", "pattern": "XOX", "error_codes": [-4,-15]}"#),
            Change::strategy("XOX", Some("-4,-15")).unwrap()
        );
        assert_eq!(
            change(r#"{"command": "set_strategy", "pattern": "random", "error_codes": [-3,-6,-20]}"#),
            Change::strategy("random", Some("-3,-6,-20")).unwrap()
        );
        assert_eq!(
            change(r#"{"command": "set_error_codes", "error_codes": [-3,-6,-20,-25]}"#),
            Change::ErrorCodes("-3,-6,-20,-25".into())
        );
        assert_eq!(change(r#"{"command": "set_probability", "probability": 12.5}"#), Change::Probability(125_000));
        assert_eq!(change(r#"{"command": "toggle"}"#), Change::Enabled(Switch::Toggle));
        assert_eq!(change(r#"{"command": "toggle_recording", "enabled": true}"#), Change::Recording(Switch::On));
        assert_eq!(change(r#"{"command": "toggle_recording"}"#), Change::Recording(Switch::Toggle));
        assert_eq!(
            parse_seed_command(r#"{"command": "dump_recording", "format": "records", "count": 50}"#).unwrap(),
            Request::Dump { format: DumpFormat::Records, count: Some(50), output: None }
        );
        assert_eq!(parse_seed_command(r#"{"command": "status"}"#).unwrap(), Request::Status);
    }

    #[test]
    fn bad_objects_are_usage_errors_that_name_the_problem() {
        let message = |text: &str| parse_seed_command(text).unwrap_err().to_string();
        assert!(message(r#"{"command": "explode"}"#).contains("known: set_strategy"));
        assert!(message(r#"{"command": "set_probability"}"#).contains("needs \"probability\""));
        assert!(message(r#"{"command": "set_probability", "probability": 150}"#).contains("between 0 and 100"));
        assert!(message("[1,2]").contains("not a JSON command object"));
        assert!(message("{oops").contains("not a JSON command object"));
        assert!(message(r#"{"pattern": "X"}"#).contains("missing \"command\""));
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_refused_naming_the_key() {
        let message = |text: &str| parse_seed_command(text).unwrap_err().to_string();
        for (text, expected) in [
            (r#"{"command":"set_probability","probability":"25"}"#, r#""probability" must be a number, not "25""#),
            (r#"{"command":"set_probability","probability":[30]}"#, r#""probability" must be a number, not [30]"#),
            (r#"{"command":"set_strategy","pattern":7}"#, r#""pattern" must be a string, not 7"#),
            (r#"{"command":"set_error_codes","error_codes":{"a":1}}"#, r#""error_codes" must be an array of codes"#),
            (r#"{"command":"set_error_codes","error_codes":[[-3]]}"#, r#""error_codes" must be an array of codes"#),
            (r#"{"command":"toggle_recording","enabled":"yes"}"#, r#""enabled" must be true or false, not "yes""#),
            (r#"{"command":"replay_recording","loop":1}"#, r#""loop" must be true or false, not 1"#),
            (r#"{"command":"dump_recording","count":-5}"#, r#""count" must be a whole number ≥ 0, not -5"#),
            (r#"{"command":"dump_recording","count":"5"}"#, r#""count" must be a whole number ≥ 0, not "5""#),
            (r#"{"command":"dump_recording","format":1}"#, r#""format" must be a string, not 1"#),
            (
                r#"{"command":"set_probability","probability":25,"pid":999}"#,
                r#"set_probability: unknown key "pid" (it takes "probability"); choose processes with --pid"#,
            ),
            (r#"{"command":"enable","force":true}"#, r#"enable: unknown key "force" (it takes no other key)"#),
            (
                r#"{"command":"set_strategy","pattern":"XO","codes":[-3]}"#,
                r#"unknown key "codes" (it takes "pattern", "error_codes")"#,
            ),
        ] {
            let error = message(text);
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn every_seed_spelling_still_works() {
        assert_eq!(
            change(r#"{"command":"set_error_codes","error_codes":"-3,UCS_ERR_TIMED_OUT"}"#),
            Change::ErrorCodes("-3,UCS_ERR_TIMED_OUT".into())
        );
        assert_eq!(
            change(r#"{"command":"set_error_codes","error_codes":[-3,"UCS_ERR_TIMED_OUT"]}"#),
            Change::ErrorCodes("-3,UCS_ERR_TIMED_OUT".into())
        );
        assert_eq!(change(r#"{"command":"set_probability","probability":25}"#), Change::Probability(250_000));
        assert_eq!(change(r#"{"command":"set_probability","probability":1e-4}"#), Change::Probability(1));
        let too_fine = parse_seed_command(r#"{"command":"set_probability","probability":1e-5}"#).unwrap_err();
        assert!(too_fine.to_string().contains("'0.00001' is finer than"), "{too_fine}");
        assert_eq!(change(r#"{"command":"toggle_recording","enabled":false}"#), Change::Recording(Switch::Off));
        assert_eq!(change(r#"{"command":"toggle_recording","enabled":null}"#), Change::Recording(Switch::Toggle));
        assert_eq!(
            change(r#"{"command":"replay_recording","loop":true}"#),
            Change::Replay { source: ReplaySource::OwnRecording, looping: true }
        );
        assert_eq!(
            change(r#"{"command":"replay_recording"}"#),
            Change::Replay { source: ReplaySource::OwnRecording, looping: false }
        );
        assert_eq!(change(r#"{"command":"clear_recording"}"#), Change::ClearRecording);
        assert_eq!(change(r#"{"command":"reset"}"#), Change::Reset);
        assert_eq!(
            parse_seed_command(r#"{"command":"dump_recording","format":"pattern"}"#).unwrap(),
            Request::Dump { format: DumpFormat::Pattern, count: None, output: None }
        );
    }
}
