//! Compatibility with the seed UCX fault-injector client, so existing scripts keep working: its JSON command
//! objects (`faultline send '{"command":"set_strategy","pattern":"XOX","error_codes":[-4,-15]}'`) become the same
//! [`Request`]s the subcommands build. (Its spellings `record-toggle`, `record-dump`, `record-dump-count` and
//! `record-clear` are hidden subcommands of the binary.)

use serde_json::{Map, Value};

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
/// - `set_error_codes {error_codes}`, `set_probability {probability}` (percent);
/// - `toggle`, `enable`, `disable`, `reset`, `status`;
/// - `toggle_recording {enabled?}`, `dump_recording {format?, count?}`, `clear_recording`,
///   `replay_recording {loop?}` (replays each process's own recording).
///
/// Codes may be numbers or names, as a JSON array or a comma-separated string.
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
    let field = |name: &'static str| Field { command, name, value: object.get(name) };
    let change = match command {
        "set_strategy" => {
            Change::strategy(&field("pattern").text()?, field("error_codes").optional_text()?.as_deref())?
        }
        "set_error_codes" => Change::ErrorCodes(field("error_codes").text()?),
        "set_probability" => Change::probability(&field("probability").text()?)?,
        "toggle" => Change::Enabled(Switch::Toggle),
        "enable" => Change::Enabled(Switch::On),
        "disable" => Change::Enabled(Switch::Off),
        "reset" => Change::Reset,
        "status" => return Ok(Request::Status),
        "toggle_recording" => match field("enabled").optional_text()? {
            Some(switch) => Change::recording(&switch)?,
            None => Change::Recording(Switch::Toggle),
        },
        "dump_recording" => return dump_request(&object, command),
        "clear_recording" => Change::ClearRecording,
        "replay_recording" => Change::Replay {
            source: ReplaySource::OwnRecording,
            looping: field("loop").optional_text()?.is_some_and(|l| l == "true"),
        },
        other => {
            return Err(Error::usage(format!("unknown command '{other}' (known: {})", SEED_COMMANDS.join(", "))));
        }
    };
    Ok(Request::Change(change))
}

fn dump_request(object: &Map<String, Value>, command: &str) -> Result<Request, Error> {
    let format = Field { command, name: "format", value: object.get("format") }.optional_text()?;
    let count = Field { command, name: "count", value: object.get("count") }.optional_text()?;
    Ok(Request::Dump {
        format: format.as_deref().map_or(Ok(DumpFormat::Summary), DumpFormat::parse)?,
        count: count.map(|c| shm_proto::config::parse_count("count", &c)).transpose()?,
        output: None,
    })
}

/// One field of a command object.
struct Field<'a> {
    command: &'a str,
    name: &'static str,
    value: Option<&'a Value>,
}

impl Field<'_> {
    /// The field as the text a user would type: strings as they are, numbers and booleans as written, arrays
    /// joined with commas (`[-3,-6]` → `-3,-6`).
    fn optional_text(&self) -> Result<Option<String>, Error> {
        let scalar = |value: &Value| match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            Value::Bool(on) => Ok(on.to_string()),
            other => Err(Error::usage(format!("{}: \"{}\" cannot be {other}", self.command, self.name))),
        };
        match self.value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.iter().map(scalar).collect::<Result<Vec<_>, _>>()?.join(","))),
            Some(value) => scalar(value).map(Some),
        }
    }

    fn text(&self) -> Result<String, Error> {
        self.optional_text()?.ok_or_else(|| Error::usage(format!("{} needs \"{}\"", self.command, self.name)))
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
}
