//! The data files the configuration names (the group directory, users files): TOML read at
//! start-up (the group directory again on SIGHUP), whose errors are one line naming the
//! file and the line, as the configuration's own are.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Reads `path` and makes a `T` of its text with `build`; an error names the file.
pub(crate) fn load<T>(
    path: &Path,
    build: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    build(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Deserializes TOML text; an error reads `line N: message`.
pub(crate) fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| match located(text, &e) {
        (Some(line), message) => format!("line {line}: {message}"),
        (None, message) => message,
    })
}

/// The line a TOML error points at, if any, and its message on one line.
pub(crate) fn located(text: &str, e: &toml::de::Error) -> (Option<usize>, String) {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let message = e.message().split_whitespace().collect::<Vec<_>>().join(" ");
    (line, message)
}
