//! Sampler settings: how the model samples its reply. Set per chat, per
//! character and globally, resolved field by field (chat, then character,
//! then global), checked against the ranges the provider documents, and sent
//! upstream with only the fields that are set.
//!
//! The same serde shape is stored (JSON text in the rows and settings) and
//! sent (flattened into the provider's request body), so a field name is
//! written once.

use serde::{Deserialize, Serialize};

use crate::{
    api::validate::MAX_TOKENS_MAX as MAX_TOKENS_LIMIT,
    error::{Error, Result},
};

/// OpenRouter's `reasoning` options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Reasoning {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effort: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Efforts OpenRouter accepts.
const EFFORTS: [&str; 6] = ["xhigh", "high", "medium", "low", "minimal", "none"];
const STOP_MAX: usize = 4;
const STOP_MAX_CHARS: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Samplers {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_a: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
}

impl Samplers {
    /// Each field of `self`, or else `fallback`'s.
    #[must_use]
    pub fn or(self, fallback: &Samplers) -> Samplers {
        let fallback = fallback.clone();
        Samplers {
            temperature: self.temperature.or(fallback.temperature),
            top_p: self.top_p.or(fallback.top_p),
            top_k: self.top_k.or(fallback.top_k),
            min_p: self.min_p.or(fallback.min_p),
            top_a: self.top_a.or(fallback.top_a),
            frequency_penalty: self.frequency_penalty.or(fallback.frequency_penalty),
            presence_penalty: self.presence_penalty.or(fallback.presence_penalty),
            repetition_penalty: self.repetition_penalty.or(fallback.repetition_penalty),
            seed: self.seed.or(fallback.seed),
            stop: if self.stop.is_empty() { fallback.stop } else { self.stop },
            max_tokens: self.max_tokens.or(fallback.max_tokens),
            reasoning: self.reasoning.or(fallback.reasoning),
        }
    }

    /// The names of the fields, as in update masks (`samplers.<name>`).
    pub const FIELDS: [&'static str; 12] = [
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "top_a",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "seed",
        "stop",
        "max_tokens",
        "reasoning",
    ];

    /// Copies field `name` (one of [`Self::FIELDS`]) from `from`; false
    /// when there is no such field.
    pub fn copy_field(&mut self, from: &Samplers, name: &str) -> bool {
        match name {
            "temperature" => self.temperature = from.temperature,
            "top_p" => self.top_p = from.top_p,
            "top_k" => self.top_k = from.top_k,
            "min_p" => self.min_p = from.min_p,
            "top_a" => self.top_a = from.top_a,
            "frequency_penalty" => self.frequency_penalty = from.frequency_penalty,
            "presence_penalty" => self.presence_penalty = from.presence_penalty,
            "repetition_penalty" => self.repetition_penalty = from.repetition_penalty,
            "seed" => self.seed = from.seed,
            "stop" => self.stop.clone_from(&from.stop),
            "max_tokens" => self.max_tokens = from.max_tokens,
            "reasoning" => self.reasoning.clone_from(&from.reasoning),
            _ => return false,
        }
        true
    }

    /// Read from stored JSON; what cannot be read counts as unset (and is
    /// logged), so a bad stored value never blocks a chat.
    pub fn from_stored(json: &str) -> Samplers {
        if json.trim().is_empty() {
            return Samplers::default();
        }
        serde_json::from_str(json).unwrap_or_else(|err| {
            tracing::warn!(error = %err, "stored sampler settings cannot be read; using none");
            Samplers::default()
        })
    }

    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Checks every set field against the provider's documented range;
    /// `field` prefixes the field names in errors ("samplers").
    pub fn validate(&self, field: &str) -> Result<()> {
        let range = |name: &str, value: Option<f64>, low: f64, high: f64, low_open: bool| {
            let Some(value) = value else { return Ok(()) };
            let above_low = if low_open { value > low } else { value >= low };
            if value.is_finite() && above_low && value <= high {
                return Ok(());
            }
            let from = if low_open { format!("above {low}") } else { format!("{low}") };
            Err(Error::invalid(format!("{field}.{name}"), format!("must be from {from} to {high}, not {value}")))
        };
        range("temperature", self.temperature, 0.0, 2.0, false)?;
        range("top_p", self.top_p, 0.0, 1.0, true)?;
        range("min_p", self.min_p, 0.0, 1.0, false)?;
        range("top_a", self.top_a, 0.0, 1.0, false)?;
        range("frequency_penalty", self.frequency_penalty, -2.0, 2.0, false)?;
        range("presence_penalty", self.presence_penalty, -2.0, 2.0, false)?;
        range("repetition_penalty", self.repetition_penalty, 0.0, 2.0, true)?;
        if self.stop.len() > STOP_MAX {
            return Err(Error::invalid(
                format!("{field}.stop"),
                format!("has {} strings; at most {STOP_MAX}", self.stop.len()),
            ));
        }
        for (i, stop) in self.stop.iter().enumerate() {
            let chars = stop.chars().count();
            if chars == 0 || chars > STOP_MAX_CHARS {
                return Err(Error::invalid(
                    format!("{field}.stop[{i}]"),
                    format!("must be 1 to {STOP_MAX_CHARS} characters, not {chars}"),
                ));
            }
        }
        if let Some(max) = self.max_tokens.filter(|m| *m == 0 || *m > MAX_TOKENS_LIMIT) {
            return Err(Error::invalid(
                format!("{field}.max_tokens"),
                format!("must be 1 to {MAX_TOKENS_LIMIT}, not {max}"),
            ));
        }
        if let Some(reasoning) = &self.reasoning {
            if let Some(effort) = reasoning.effort.as_deref().filter(|e| !EFFORTS.contains(e)) {
                return Err(Error::invalid(
                    format!("{field}.reasoning.effort"),
                    format!("must be one of {}, not {effort:?}", EFFORTS.join(", ")),
                ));
            }
            if reasoning.effort.is_some() && reasoning.max_tokens.is_some() {
                return Err(Error::invalid(
                    format!("{field}.reasoning"),
                    "takes an effort or a max_tokens, not both (the provider allows one)",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution_takes_each_field_from_the_nearest_level() {
        let chat = Samplers { temperature: Some(0.2), ..Default::default() };
        let character =
            Samplers { temperature: Some(0.9), top_p: Some(0.8), stop: vec!["END".into()], ..Default::default() };
        let global = Samplers { top_k: Some(40), top_p: Some(0.5), ..Default::default() };
        let resolved = chat.or(&character).or(&global);
        assert_eq!(
            resolved,
            Samplers {
                temperature: Some(0.2),
                top_p: Some(0.8),
                top_k: Some(40),
                stop: vec!["END".into()],
                ..Default::default()
            }
        );
        assert_eq!(serde_json::to_value(&resolved).expect("json")["top_k"], 40);
        assert_eq!(serde_json::to_string(&Samplers::default()).expect("json"), "{}", "only set fields are sent");
    }

    #[test]
    fn out_of_range_values_name_their_field() {
        let bad = [
            Samplers { temperature: Some(2.5), ..Default::default() },
            Samplers { top_p: Some(0.0), ..Default::default() },
            Samplers { repetition_penalty: Some(0.0), ..Default::default() },
            Samplers { frequency_penalty: Some(f64::NAN), ..Default::default() },
            Samplers { stop: vec!["a".into(); 5], ..Default::default() },
            Samplers { max_tokens: Some(0), ..Default::default() },
            Samplers {
                reasoning: Some(Reasoning { effort: Some("huge".into()), ..Default::default() }),
                ..Default::default()
            },
        ];
        let names = ["temperature", "top_p", "repetition_penalty", "frequency_penalty", "stop", "max_tokens", "effort"];
        for (samplers, name) in bad.iter().zip(names) {
            let err = samplers.validate("samplers").expect_err(name);
            assert!(err.to_string().contains(name), "{err}");
        }
        assert!(Samplers { top_p: Some(1.0), min_p: Some(0.0), ..Default::default() }.validate("s").is_ok());
    }
}
