//! Taking typed fields out of a JSON object, so that what is left afterwards is
//! exactly the set of fields nobody modelled (kept verbatim in `extensions`).
//!
//! `null` counts as absent: exporters write it for "unset" all the time. Any
//! other wrong type is an error naming the field, because guessing would lose
//! data silently.

use serde_json::{Map, Value};

/// A field that is present but not of the type its format says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    pub field: String,
    pub expected: &'static str,
}

pub(crate) type Fields = Map<String, Value>;

fn wrong(field: &str, expected: &'static str) -> FieldError {
    FieldError { field: field.to_owned(), expected }
}

/// Removes `key`, treating `null` as absent.
fn take(map: &mut Fields, key: &str) -> Option<Value> {
    match map.remove(key) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

pub(crate) fn string(map: &mut Fields, key: &str) -> Result<Option<String>, FieldError> {
    match take(map, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(wrong(key, "a string")),
    }
}

pub(crate) fn bool(map: &mut Fields, key: &str) -> Result<Option<bool>, FieldError> {
    match take(map, key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(wrong(key, "true or false")),
    }
}

/// An integer; also accepts whole floats (`4.0`) and numeric strings (`"4"`),
/// which web editors write when a number went through a text box.
pub(crate) fn int(map: &mut Fields, key: &str) -> Result<Option<i64>, FieldError> {
    let value = match take(map, key) {
        None => return Ok(None),
        Some(v) => v,
    };
    let n = match &value {
        Value::Number(n) => {
            n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64))
        }
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.map(Some).ok_or_else(|| wrong(key, "an integer"))
}

/// A non-negative integer that fits in `u32`.
pub(crate) fn uint(map: &mut Fields, key: &str) -> Result<Option<u32>, FieldError> {
    match int(map, key) {
        Ok(Some(n)) => u32::try_from(n).map(Some).map_err(|_| wrong(key, "a whole number from 0 to 4294967295")),
        Ok(None) => Ok(None),
        Err(_) => Err(wrong(key, "a whole number from 0 to 4294967295")),
    }
}

/// A list of strings. A single string is accepted as a one-element list
/// (some editors write `"key": "dragon"`), an empty string as an empty list.
pub(crate) fn strings(map: &mut Fields, key: &str) -> Result<Option<Vec<String>>, FieldError> {
    match take(map, key) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(Vec::new())),
        Some(Value::String(s)) => Ok(Some(vec![s])),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(wrong(key, "a list of strings")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong(key, "a list of strings")),
    }
}

pub(crate) fn object(map: &mut Fields, key: &str) -> Result<Option<Fields>, FieldError> {
    match take(map, key) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(wrong(key, "an object")),
    }
}

/// Inserts `value` under `key` unless it is `None`.
pub(crate) fn put_opt<T: Into<Value>>(map: &mut Fields, key: &str, value: Option<T>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.into());
    }
}

pub(crate) fn put<T: Into<Value>>(map: &mut Fields, key: &str, value: T) {
    map.insert(key.to_owned(), value.into());
}

/// Parses bytes as a JSON object, reporting serde's line and column on failure.
pub(crate) fn parse_object(data: &[u8]) -> Result<Fields, JsonError> {
    // A UTF-8 byte-order mark is common in files saved by Windows editors.
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(JsonError::NotAnObject),
        Err(e) => {
            // serde's Display appends " at line L column C"; the caller places those itself.
            let full = e.to_string();
            let suffix = format!(" at line {} column {}", e.line(), e.column());
            let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
            Err(JsonError::Syntax { line: e.line(), column: e.column(), message })
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JsonError {
    Syntax { line: usize, column: usize, message: String },
    NotAnObject,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Fields {
        match v {
            Value::Object(m) => m,
            _ => Fields::new(),
        }
    }

    #[test]
    fn null_is_absent_and_removed() {
        let mut m = obj(json!({"a": null}));
        assert_eq!(string(&mut m, "a"), Ok(None));
        assert!(m.is_empty());
    }

    #[test]
    fn numbers_are_read_leniently_but_garbage_is_an_error() {
        let mut m = obj(json!({"a": 4.0, "b": "7", "c": "x", "d": -1}));
        assert_eq!(int(&mut m, "a"), Ok(Some(4)));
        assert_eq!(int(&mut m, "b"), Ok(Some(7)));
        assert_eq!(int(&mut m, "c").map_err(|e| e.field), Err("c".to_owned()));
        assert!(uint(&mut m, "d").is_err());
    }

    #[test]
    fn a_single_string_is_a_one_key_list() {
        let mut m = obj(json!({"a": "dragon", "b": "", "c": [1]}));
        assert_eq!(strings(&mut m, "a"), Ok(Some(vec!["dragon".to_owned()])));
        assert_eq!(strings(&mut m, "b"), Ok(Some(vec![])));
        assert!(strings(&mut m, "c").is_err());
    }
}
