//! Compatibility with the seed UCX fault-injector client, so existing scripts keep working: every JSON command
//! object its v0.3.5 handles (`ipc/commands.rs`), with the field names it sends and the older README ones
//! (`faultline send '{"command":"set_probability","value":25}'`), becomes the same [`Request`] the subcommands
//! build. (Its client's subcommands are the binary's, under either name: see `cli`.)

use serde_json::{Map, Value};
use shm_proto::config::StatsInterval;

use crate::actions::{Change, ReplaySource, Switch};
use crate::error::Error;
use crate::recording::DumpFormat;
use crate::request::Request;

/// The seed's command names that [`parse_seed_command`] accepts (plus `enable` / `disable`).
pub const SEED_COMMANDS: &[&str] = &[
    "set_strategy",
    "set_error_codes",
    "set_probability",
    "set_pattern",
    "toggle",
    "enable",
    "disable",
    "reset",
    "status",
    "stats",
    "enable_hook",
    "disable_hook",
    "set_stats_log_interval",
    "toggle_recording",
    "dump_recording",
    "clear_recording",
    "replay_recording",
    "set_site",
];

/// The fields of the seed's command object. Its client's file backend writes every one on every line, `null`
/// where unused, so a `null` one is accepted on any command.
const SEED_FIELDS: &[&str] =
    &["value", "pattern", "error_codes", "recording_enabled", "export_format", "hook_name", "stats_log_interval"];

/// What the seed client's file backend adds to each line: a time stamp and an unused `scenario`. Neither means
/// anything to a command; they are accepted (with the seed's types) and ignored.
const LINE_FIELDS: &[&str] = &["timestamp", "scenario"];

/// The records `dump_recording` lists in the records format when no count is given (the seed's default).
pub const SEED_RECORDS_COUNT: u64 = 100;

/// Translates one seed JSON command object into a request. Where a command has two spellings of a field (the
/// seed's v0.3.5 name first, then the older README one), either may be given, not both.
///
/// - `set_strategy {pattern, error_codes?}`: `pattern` is `random` or X/O; `set_pattern {pattern}`: X/O only;
/// - `set_error_codes {pattern | error_codes}`: a comma-separated string (the seed's `pattern`) or an array;
/// - `set_probability {value | probability}` (percent, a number);
/// - `toggle`, `enable`, `disable`, `reset`, `status`, `stats` (the status, counters included);
/// - `enable_hook` / `disable_hook {hook_name}`: arm or disarm a hook (`all`: every hook), the others unchanged;
/// - `set_stats_log_interval {stats_log_interval?}`: the shim's stats line every N calls (0 or absent: off);
/// - `toggle_recording {recording_enabled | enabled}` (true/false; absent toggles);
/// - `dump_recording {export_format | format, value | count}` (records: the last 100 unless a count is given);
/// - `clear_recording`, `replay_recording {loop?}` (true/false; replays each process's own recording);
/// - `set_site {site}` (faultline's, not the seed's): where injected faults surface, `post`, `completion` or
///   `endpoint`.
///
/// Codes may be numbers or names. A key the command does not take, or a value of the wrong JSON type, is refused
/// (a dropped `"pid"` would send the command to every process).
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
    check_keys(command, keys, &object)?;
    let field =
        |name: &'static str| Field { command, name, value: object.get(name).filter(|v| !v.is_null()), alias: None };
    let either = |first: &'static str, second: &'static str| match (field(first), field(second)) {
        (a, b) if a.value.is_some() && b.value.is_some() => {
            Err(Error::usage(format!("{command}: give \"{first}\" or \"{second}\", not both")))
        }
        (a, b) if b.value.is_some() => Ok(Field { alias: Some(a.name), ..b }),
        (a, _) => Ok(Field { alias: Some(second), ..a }),
    };
    let change = match command {
        "set_strategy" => {
            Change::strategy(&field("pattern").required(Field::string)?, field("error_codes").codes()?.as_deref())?
        }
        "set_pattern" => Change::pattern(&field("pattern").required(Field::string)?)?,
        "set_error_codes" => {
            // The seed's client sends the list as the string `pattern`; the README's `error_codes` may be an array.
            let codes = either("error_codes", "pattern")?;
            let list =
                if codes.name == "pattern" { codes.required(Field::string)? } else { codes.required(Field::codes)? };
            Change::ErrorCodes(list)
        }
        "set_probability" => Change::probability(&either("value", "probability")?.required(Field::number)?)?,
        "toggle" => Change::Enabled(Switch::Toggle),
        "enable" => Change::Enabled(Switch::On),
        "disable" => Change::Enabled(Switch::Off),
        "reset" => Change::Reset,
        "status" | "stats" => return Ok(Request::Status),
        "enable_hook" | "disable_hook" => {
            Change::ArmHooks { hooks: field("hook_name").required(Field::string)?, arm: command == "enable_hook" }
        }
        "set_stats_log_interval" => match field("stats_log_interval").count()?.unwrap_or(0) {
            0 => Change::StatsInterval(StatsInterval::Off),
            calls if calls < 1 << 31 => Change::StatsInterval(StatsInterval::Calls(calls as u32)),
            calls => {
                return Err(Error::usage(format!(
                    "{command}: \"stats_log_interval\" {calls} is not a count of calls below 2^31"
                )))
            }
        },
        "toggle_recording" => match either("recording_enabled", "enabled")?.boolean()? {
            Some(true) => Change::Recording(Switch::On),
            Some(false) => Change::Recording(Switch::Off),
            None => Change::Recording(Switch::Toggle),
        },
        "dump_recording" => {
            let format = either("export_format", "format")?.string()?;
            let format = format.as_deref().map_or(Ok(DumpFormat::Summary), DumpFormat::parse)?;
            let count = either("value", "count")?.count()?;
            let count = count.or((format == DumpFormat::Records).then_some(SEED_RECORDS_COUNT));
            return Ok(Request::Dump { format, count, output: None });
        }
        "clear_recording" => Change::ClearRecording,
        "replay_recording" => Change::Replay {
            source: ReplaySource::OwnRecording,
            looping: field("loop").boolean()?.unwrap_or(false),
            site: None,
        },
        "set_site" => Change::site(&field("site").required(Field::string)?)?,
        other => return Err(unknown_command(other)),
    };
    Ok(Request::Change(change))
}

/// The keys `command` takes besides `"command"`; `None` for an unknown command.
fn keys_of(command: &str) -> Option<&'static [&'static str]> {
    Some(match command {
        "set_strategy" => &["pattern", "error_codes"],
        "set_pattern" => &["pattern"],
        "set_error_codes" => &["error_codes", "pattern"],
        "set_probability" => &["value", "probability"],
        "enable_hook" | "disable_hook" => &["hook_name"],
        "set_stats_log_interval" => &["stats_log_interval"],
        "toggle_recording" => &["recording_enabled", "enabled"],
        "dump_recording" => &["export_format", "format", "value", "count"],
        "replay_recording" => &["loop"],
        "set_site" => &["site"],
        "toggle" | "enable" | "disable" | "reset" | "status" | "stats" | "clear_recording" => &[],
        _ => return None,
    })
}

/// Refuses a key `command` does not take: only the seed's own fields left `null` and its file backend's line
/// fields (with their types) are let through besides `keys`.
fn check_keys(command: &str, keys: &[&str], object: &Map<String, Value>) -> Result<(), Error> {
    for (key, value) in object {
        let taken = key == "command" || keys.contains(&key.as_str());
        let unused_seed_field = SEED_FIELDS.contains(&key.as_str()) && value.is_null();
        if taken || unused_seed_field {
            continue;
        }
        if LINE_FIELDS.contains(&key.as_str()) {
            let typed = match key.as_str() {
                "timestamp" => value.is_u64(),
                _ => value.is_null() || value.is_u64(),
            };
            if typed {
                continue;
            }
            return Err(Error::usage(format!(
                "{command}: \"{key}\" must be a whole number ≥ 0, not {}",
                shorten(&value.to_string())
            )));
        }
        return Err(unknown_key(command, key, keys));
    }
    Ok(())
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
    /// Its other spelling, named when neither is given.
    alias: Option<&'static str>,
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

    /// A whole number ≥ 0 (the seed sends counts as floats: `50.0` is 50).
    fn count(&self) -> Result<Option<u64>, Error> {
        match self.value {
            None => Ok(None),
            Some(Value::Number(number)) if number.is_u64() => Ok(number.as_u64()),
            Some(Value::Number(number))
                if number.as_f64().is_some_and(|f| f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64) =>
            {
                Ok(number.as_f64().map(|f| f as u64))
            }
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

    /// The field's value, or an error naming it (and its other spelling) when absent.
    fn required<T>(&self, get: impl Fn(&Self) -> Result<Option<T>, Error>) -> Result<T, Error> {
        get(self)?.ok_or_else(|| match self.alias {
            Some(alias) => Error::usage(format!("{} needs \"{}\" (or \"{alias}\")", self.command, self.name)),
            None => Error::usage(format!("{} needs \"{}\"", self.command, self.name)),
        })
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

    /// What the seed's v0.3.5 client sends over its socket, field for field (`ipc/commands.rs`).
    #[test]
    fn the_v0_3_5_client_objects_mean_what_they_meant_to_the_seed() {
        assert_eq!(change(r#"{"command":"set_probability","value":50.0}"#), Change::Probability(500_000));
        assert_eq!(change(r#"{"command":"set_probability","value":0.1}"#), Change::Probability(1_000));
        assert_eq!(change(r#"{"command":"set_error_codes","pattern":"-3,-6"}"#), Change::ErrorCodes("-3,-6".into()));
        assert_eq!(change(r#"{"command":"set_pattern","pattern":"XOOOOXOO"}"#), Change::pattern("XOOOOXOO").unwrap());
        assert_eq!(
            change(r#"{"command":"toggle_recording","recording_enabled":true}"#),
            Change::Recording(Switch::On),
            "sets, never toggles"
        );
        assert_eq!(
            change(r#"{"command":"toggle_recording","recording_enabled":false}"#),
            Change::Recording(Switch::Off)
        );
        assert_eq!(
            parse_seed_command(r#"{"command":"dump_recording","export_format":"records","value":50.0}"#).unwrap(),
            Request::Dump { format: DumpFormat::Records, count: Some(50), output: None }
        );
        assert_eq!(
            parse_seed_command(r#"{"command":"dump_recording","export_format":"records"}"#).unwrap(),
            Request::Dump { format: DumpFormat::Records, count: Some(SEED_RECORDS_COUNT), output: None },
            "the seed lists the last 100 records"
        );
        assert_eq!(
            parse_seed_command(r#"{"command":"dump_recording","export_format":"pattern"}"#).unwrap(),
            Request::Dump { format: DumpFormat::Pattern, count: None, output: None }
        );
        assert_eq!(parse_seed_command(r#"{"command":"stats"}"#).unwrap(), Request::Status);
        assert_eq!(
            change(r#"{"command":"enable_hook","hook_name":"ucp_request_check_status"}"#),
            Change::ArmHooks { hooks: "ucp_request_check_status".into(), arm: true }
        );
        assert_eq!(
            change(r#"{"command":"disable_hook","hook_name":"all"}"#),
            Change::ArmHooks { hooks: "all".into(), arm: false }
        );
        assert_eq!(
            change(r#"{"command":"set_stats_log_interval","stats_log_interval":64}"#),
            Change::StatsInterval(StatsInterval::Calls(64))
        );
        assert_eq!(change(r#"{"command":"set_stats_log_interval"}"#), Change::StatsInterval(StatsInterval::Off));
        assert_eq!(
            change(r#"{"command":"replay_recording"}"#),
            change(r#"{"command":"replay_recording","loop":false}"#)
        );
    }

    /// The seed client's file backend writes one line per command with every field, `null` where unused.
    #[test]
    fn the_file_backend_lines_are_accepted_with_their_nulls() {
        let line = r#"{"timestamp":1733390000,"command":"set_probability","value":25.0,"pattern":null,
            "recording_enabled":null,"export_format":null,"scenario":null}"#;
        assert_eq!(change(line), Change::Probability(250_000));
        let toggle = r#"{"timestamp":1,"command":"toggle","value":null,"pattern":null,"recording_enabled":null,
            "export_format":null,"scenario":null}"#;
        assert_eq!(change(toggle), Change::Enabled(Switch::Toggle));
    }

    #[test]
    fn set_site_is_the_site_command() {
        use shm_proto::layout::Site;
        assert_eq!(change(r#"{"command":"set_site","site":"completion"}"#), Change::Site(Site::Completion));
        assert_eq!(change(r#"{"command":"set_site","site":"Endpoint"}"#), Change::site("endpoint").unwrap());
        let message = |text: &str| parse_seed_command(text).unwrap_err().to_string();
        assert!(message(r#"{"command":"set_site"}"#).contains(r#"set_site needs "site""#));
        assert!(message(r#"{"command":"set_site","site":2}"#).contains(r#""site" must be a string, not 2"#));
        let unknown = message(r#"{"command":"set_site","site":"callback"}"#);
        assert!(unknown.contains("fault site 'callback' is not one of post, completion, endpoint"), "{unknown}");
        assert!(message(r#"{"command":"set_site","value":"post"}"#).contains(r#"unknown key "value""#));
    }

    #[test]
    fn bad_objects_are_usage_errors_that_name_the_problem() {
        let message = |text: &str| parse_seed_command(text).unwrap_err().to_string();
        assert!(message(r#"{"command": "explode"}"#).contains("known: set_strategy"));
        assert!(message(r#"{"command": "set_probability"}"#).contains(r#"needs "value" (or "probability")"#));
        assert!(message(r#"{"command": "set_probability", "probability": 150}"#).contains("between 0 and 100"));
        assert!(message(r#"{"command": "set_error_codes"}"#).contains(r#"needs "error_codes" (or "pattern")"#));
        assert!(message(r#"{"command": "enable_hook"}"#).contains(r#"enable_hook needs "hook_name""#));
        assert!(message("[1,2]").contains("not a JSON command object"));
        assert!(message("{oops").contains("not a JSON command object"));
        assert!(message(r#"{"pattern": "X"}"#).contains("missing \"command\""));
    }

    #[test]
    fn wrong_types_and_unknown_keys_are_refused_naming_the_key() {
        let message = |text: &str| parse_seed_command(text).unwrap_err().to_string();
        for (text, expected) in [
            (r#"{"command":"set_probability","probability":"25"}"#, r#""probability" must be a number, not "25""#),
            (r#"{"command":"set_probability","value":"25"}"#, r#""value" must be a number, not "25""#),
            (r#"{"command":"set_probability","probability":[30]}"#, r#""probability" must be a number, not [30]"#),
            (r#"{"command":"set_probability","value":25,"probability":25}"#, r#"give "value" or "probability""#),
            (r#"{"command":"set_strategy","pattern":7}"#, r#""pattern" must be a string, not 7"#),
            (r#"{"command":"set_pattern","pattern":["X"]}"#, r#""pattern" must be a string"#),
            (r#"{"command":"set_pattern","pattern":"random"}"#, "'r' at position 1 is neither X"),
            (r#"{"command":"set_error_codes","error_codes":{"a":1}}"#, r#""error_codes" must be an array of codes"#),
            (r#"{"command":"set_error_codes","error_codes":[[-3]]}"#, r#""error_codes" must be an array of codes"#),
            (r#"{"command":"set_error_codes","pattern":"-3","error_codes":[-3]}"#, "not both"),
            (r#"{"command":"set_error_codes","pattern":[-3]}"#, r#""pattern" must be a string, not [-3]"#),
            (r#"{"command":"toggle_recording","enabled":"yes"}"#, r#""enabled" must be true or false, not "yes""#),
            (r#"{"command":"toggle_recording","recording_enabled":1}"#, r#""recording_enabled" must be true or false"#),
            (r#"{"command":"replay_recording","loop":1}"#, r#""loop" must be true or false, not 1"#),
            (r#"{"command":"dump_recording","count":-5}"#, r#""count" must be a whole number ≥ 0, not -5"#),
            (r#"{"command":"dump_recording","count":"5"}"#, r#""count" must be a whole number ≥ 0, not "5""#),
            (r#"{"command":"dump_recording","value":2.5}"#, r#""value" must be a whole number ≥ 0, not 2.5"#),
            (r#"{"command":"dump_recording","format":1}"#, r#""format" must be a string, not 1"#),
            (r#"{"command":"dump_recording","export_format":"everything"}"#, "unknown dump format 'everything'"),
            (r#"{"command":"enable_hook","hook_name":3}"#, r#""hook_name" must be a string, not 3"#),
            (
                r#"{"command":"set_stats_log_interval","stats_log_interval":"64"}"#,
                r#""stats_log_interval" must be a whole number ≥ 0"#,
            ),
            (r#"{"command":"set_stats_log_interval","stats_log_interval":4294967295}"#, "below 2^31"),
            (r#"{"command":"toggle","timestamp":"now"}"#, r#""timestamp" must be a whole number ≥ 0"#),
            (
                r#"{"command":"set_probability","probability":25,"pid":999}"#,
                r#"set_probability: unknown key "pid" (it takes "value", "probability"); choose processes with --pid"#,
            ),
            (r#"{"command":"enable","force":true}"#, r#"enable: unknown key "force" (it takes no other key)"#),
            (r#"{"command":"toggle","value":50}"#, r#"toggle: unknown key "value" (it takes no other key)"#),
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
            Change::Replay { source: ReplaySource::OwnRecording, looping: true, site: None }
        );
        assert_eq!(
            change(r#"{"command":"replay_recording"}"#),
            Change::Replay { source: ReplaySource::OwnRecording, looping: false, site: None }
        );
        assert_eq!(change(r#"{"command":"clear_recording"}"#), Change::ClearRecording);
        assert_eq!(change(r#"{"command":"reset"}"#), Change::Reset);
        assert_eq!(
            parse_seed_command(r#"{"command":"dump_recording","format":"pattern"}"#).unwrap(),
            Request::Dump { format: DumpFormat::Pattern, count: None, output: None }
        );
    }
}
