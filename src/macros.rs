//! Macros in prompt text, as roleplay front ends write them: `{{char}}`,
//! `{{user}}`, `{{time}}`, `{{date}}`, `{{weekday}}`, `{{idle_duration}}`
//! (since the chat's last message) and `{{random:a,b,c}}` (also
//! `{{random::a::b}}`). A random choice is fixed by the text's key (a stored
//! message's id, or the layer's name), so regenerating a turn does not
//! reshuffle the history. Unknown macros are left as written.

use std::hash::{Hash, Hasher};

use chrono::{DateTime, NaiveDateTime, Utc};

/// What the macros of one prompt stand for.
#[derive(Debug, Clone)]
pub struct Macros<'a> {
    pub character: &'a str,
    pub user: &'a str,
    pub now: DateTime<Utc>,
    /// When the chat's last stored message was written.
    pub last_message_at: Option<NaiveDateTime>,
}

impl Macros<'_> {
    /// `text` with every macro replaced; `key` fixes `{{random}}` choices.
    pub fn apply(&self, text: &str, key: &str) -> String {
        if !text.contains("{{") {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        let mut occurrence = 0u64;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &after[..end];
            match self.expand(name, key, occurrence) {
                Some(value) => {
                    out.push_str(&value);
                    occurrence += 1;
                }
                None => {
                    out.push_str("{{");
                    out.push_str(name);
                    out.push_str("}}");
                }
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn expand(&self, name: &str, key: &str, occurrence: u64) -> Option<String> {
        let lower = name.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "char" => self.character.to_owned(),
            "user" => self.user.to_owned(),
            "time" => self.now.format("%H:%M").to_string(),
            "date" => self.now.format("%B %-d, %Y").to_string(),
            "weekday" => self.now.format("%A").to_string(),
            "idle_duration" => idle(self.last_message_at.map(|at| self.now.naive_utc() - at)),
            _ => {
                let options = random_options(name.trim())?;
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                (key, occurrence).hash(&mut hasher);
                let pick = usize::try_from(hasher.finish() % options.len() as u64).unwrap_or(0);
                options[pick].to_owned()
            }
        })
    }
}

/// The choices of `random:a,b,c` or `random::a::b`.
fn random_options(name: &str) -> Option<Vec<&str>> {
    let (head, args) = name.split_once(':')?;
    if !head.eq_ignore_ascii_case("random") {
        return None;
    }
    let options: Vec<&str> = match args.strip_prefix(':') {
        Some(args) => args.split("::").collect(),
        None => args.split(',').collect(),
    };
    let options: Vec<&str> = options.into_iter().map(str::trim).collect();
    (!options.is_empty()).then_some(options)
}

/// A duration in words: "just now", "5 minutes", "3 hours", "2 days".
fn idle(duration: Option<chrono::TimeDelta>) -> String {
    let Some(duration) = duration else { return "just now".into() };
    let minutes = duration.num_minutes();
    let (n, unit) = match minutes {
        ..1 => return "just now".into(),
        1..60 => (minutes, "minute"),
        60..1440 => (minutes / 60, "hour"),
        _ => (minutes / 1440, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn macros() -> Macros<'static> {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 9, 5, 0).single().expect("time");
        Macros {
            character: "Aria",
            user: "Sam",
            now,
            last_message_at: Some(now.naive_utc() - chrono::TimeDelta::minutes(125)),
        }
    }

    #[test]
    fn every_macro_expands() {
        let text = "{{char}} greets {{user}} at {{time}} on {{weekday}}, {{date}}, after {{idle_duration}}.";
        assert_eq!(macros().apply(text, "k"), "Aria greets Sam at 09:05 on Monday, November 30, 2026, after 2 hours.");
        assert_eq!(macros().apply("{{unknown}} and {{ broken", "k"), "{{unknown}} and {{ broken");
    }

    #[test]
    fn random_is_fixed_by_its_key() {
        let m = macros();
        let text = "{{random:red,green,blue}} {{random::one::two}}";
        let first = m.apply(text, "message-1");
        assert_eq!(first, m.apply(text, "message-1"), "same key, same choice");
        let words: Vec<&str> = first.split(' ').collect();
        assert!(["red", "green", "blue"].contains(&words[0]) && ["one", "two"].contains(&words[1]), "{first}");
        let picks: std::collections::HashSet<String> =
            (0..40).map(|i| m.apply("{{random:a,b,c}}", &format!("k{i}"))).collect();
        assert_eq!(picks.len(), 3, "different keys pick differently");
    }
}
