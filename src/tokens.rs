//! Counting tokens the way the model will: tiktoken's encodings (they ship
//! inside the crate) by default, or a Hugging Face `tokenizer.json` the
//! operator maps to a model, for exact counts on Llama, Mistral, Qwen...
//! Nothing is downloaded at run time.
//!
//! Counts are cached by content hash and tokenizer, so a turn of a long
//! chat counts only what is new: every stored message was counted before.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use sha2::{Digest, Sha256};
use tiktoken_rs::CoreBPE;

/// Counts kept: a few hundred chats of a few hundred messages.
const CACHE_ENTRIES: u64 = 200_000;
/// Tokens a chat message costs beyond its text (role and separators), and
/// the reply's priming, as OpenAI documents them for its chat formats.
pub const PER_MESSAGE: usize = 4;
pub const PER_PROMPT: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("tokenizer file {path} cannot be read: {why}")]
    File { path: PathBuf, why: String },
    #[error("tokenizer mapping {0:?} is not MODEL_PREFIX=PATH")]
    Mapping(String),
}

/// One way of counting.
#[derive(Clone)]
enum Encoding {
    Tiktoken { name: &'static str, bpe: &'static CoreBPE },
    HuggingFace { name: Arc<str>, tokenizer: Arc<tokenizers::Tokenizer> },
}

impl Encoding {
    fn name(&self) -> &str {
        match self {
            Self::Tiktoken { name, .. } => name,
            Self::HuggingFace { name, .. } => name,
        }
    }

    fn count(&self, text: &str) -> usize {
        match self {
            Self::Tiktoken { bpe, .. } => bpe.count_ordinary(text),
            // A tokenizer that fails on some text is estimated instead: the
            // budget needs a number, not an error.
            Self::HuggingFace { tokenizer, .. } => {
                tokenizer.encode(text, false).map_or_else(|_| text.len().div_ceil(4), |e| e.len())
            }
        }
    }
}

/// Chooses each model's tokenizer and counts with a shared cache. Cheap to
/// clone.
#[derive(Clone)]
pub struct TokenCounter {
    /// (model id prefix, tokenizer), longest prefix first.
    files: Arc<Vec<(String, Encoding)>>,
    cache: moka::sync::Cache<([u8; 16], usize), u32>,
}

impl std::fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefixes: Vec<&str> = self.files.iter().map(|(prefix, _)| prefix.as_str()).collect();
        f.debug_struct("TokenCounter").field("files", &prefixes).finish_non_exhaustive()
    }
}

impl TokenCounter {
    /// `mappings`: `model-prefix=path/to/tokenizer.json` pairs; a model whose
    /// id starts with the prefix is counted with that file.
    pub fn new(mappings: &[String]) -> Result<Self, TokenizerError> {
        let mut files = Vec::with_capacity(mappings.len());
        let mut loaded: HashMap<PathBuf, Encoding> = HashMap::new();
        for mapping in mappings {
            let (prefix, path) = mapping.split_once('=').ok_or_else(|| TokenizerError::Mapping(mapping.clone()))?;
            let path = Path::new(path.trim()).to_path_buf();
            let encoding = match loaded.get(&path) {
                Some(encoding) => encoding.clone(),
                None => {
                    let tokenizer = tokenizers::Tokenizer::from_file(&path)
                        .map_err(|err| TokenizerError::File { path: path.clone(), why: err.to_string() })?;
                    let name =
                        path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
                    let encoding = Encoding::HuggingFace { name: name.into(), tokenizer: Arc::new(tokenizer) };
                    loaded.insert(path, encoding.clone());
                    encoding
                }
            };
            files.push((prefix.trim().to_owned(), encoding));
        }
        files.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        Ok(Self { files: Arc::new(files), cache: moka::sync::Cache::new(CACHE_ENTRIES) })
    }

    /// Only the built-in encodings.
    pub fn builtin() -> Self {
        Self { files: Arc::new(Vec::new()), cache: moka::sync::Cache::new(CACHE_ENTRIES) }
    }

    /// Loads the default encoding (o200k_base) in the background at start,
    /// so that the first send after a start does not wait for it.
    pub async fn warm_up() {
        Builtin::O200k.loaded().await;
    }

    /// Whether the default encoding is loaded: until it is, a first send
    /// waits for it, and readiness says so.
    pub fn is_warm() -> bool {
        Builtin::O200k.cell().initialized()
    }

    /// Waits, without holding a runtime thread, until the encoding `model`
    /// counts with is loaded: [`Self::for_model`] then never blocks. A
    /// built-in encoding takes about 0.1 s to load (seconds in a debug
    /// build); a runtime thread blocked that long stalls the tasks queued
    /// behind it, a replica's lease renewals among them.
    pub async fn ready_for(&self, model: &str) {
        if self.file_for(model).is_none() {
            Builtin::of(model).loaded().await;
        }
    }

    /// The counter for one model.
    pub fn for_model(&self, model: &str) -> ModelTokens {
        let (slot, encoding) = match self.file_for(model) {
            Some((i, encoding)) => (i + 2, encoding.clone()),
            None => {
                let builtin = Builtin::of(model);
                (builtin as usize, builtin.encoding())
            }
        };
        ModelTokens { encoding, slot, cache: self.cache.clone() }
    }

    /// The tokenizer file mapped to `model` (the longest prefix), with its
    /// index; `None` when a built-in encoding counts it.
    fn file_for(&self, model: &str) -> Option<(usize, &Encoding)> {
        self.files
            .iter()
            .enumerate()
            .find(|(_, (prefix, _))| model.starts_with(prefix.as_str()))
            .map(|(i, (_, encoding))| (i, encoding))
    }
}

/// The encodings that ship inside tiktoken-rs, each loaded once. The value
/// is the encoding's slot in cache keys (files come after them).
#[derive(Clone, Copy)]
enum Builtin {
    O200k = 0,
    Cl100k = 1,
}

impl Builtin {
    fn of(model: &str) -> Self {
        if uses_cl100k(model) { Self::Cl100k } else { Self::O200k }
    }

    /// The encoding, loading it on first use (blocking: see
    /// [`Self::loaded`]).
    fn encoding(self) -> Encoding {
        match self {
            Self::O200k => Encoding::Tiktoken { name: "o200k_base", bpe: tiktoken_rs::o200k_base_singleton() },
            Self::Cl100k => Encoding::Tiktoken { name: "cl100k_base", bpe: tiktoken_rs::cl100k_base_singleton() },
        }
    }

    /// Waits until the encoding is loaded, loading it on a blocking thread.
    async fn loaded(self) {
        self.cell()
            .get_or_init(|| async move {
                // A failed load (a panic in the thread) surfaces where the
                // encoding is used, as it did before this wait.
                let _ = tokio::task::spawn_blocking(move || drop(self.encoding())).await;
            })
            .await;
    }

    /// Set once the encoding is loaded.
    fn cell(self) -> &'static tokio::sync::OnceCell<()> {
        static O200K: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        static CL100K: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
        match self {
            Self::O200k => &O200K,
            Self::Cl100k => &CL100K,
        }
    }
}

/// OpenAI's models before GPT-4o count with cl100k_base; everything else
/// (GPT-4o and later, and models whose tokenizer is not given) with
/// o200k_base, the closer estimate for today's vocabularies.
fn uses_cl100k(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model);
    (name.starts_with("gpt-4") && !name.starts_with("gpt-4o") && !name.starts_with("gpt-4.1"))
        || name.starts_with("gpt-3.5")
}

/// Counts for one model's tokenizer.
#[derive(Clone)]
pub struct ModelTokens {
    encoding: Encoding,
    /// Which tokenizer, in cache keys.
    slot: usize,
    cache: moka::sync::Cache<([u8; 16], usize), u32>,
}

impl ModelTokens {
    pub fn tokenizer_name(&self) -> &str {
        self.encoding.name()
    }

    /// Tokens in `text`, from the cache when it was counted before.
    pub fn count(&self, text: &str) -> usize {
        if text.is_empty() {
            return 0;
        }
        let digest = Sha256::digest(text.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&digest[..16]);
        let counted =
            self.cache.get_with((key, self.slot), || u32::try_from(self.encoding.count(text)).unwrap_or(u32::MAX));
        counted as usize
    }

    /// Tokens a chat message with this text costs in a prompt.
    pub fn message(&self, text: &str) -> usize {
        self.count(text) + PER_MESSAGE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_with_the_models_encoding_and_caches() {
        let counter = TokenCounter::new(&[]).expect("counter");
        let gpt4o = counter.for_model("openai/gpt-4o-mini");
        assert_eq!(gpt4o.tokenizer_name(), "o200k_base");
        assert_eq!(gpt4o.count("hello world"), 2);
        assert_eq!(counter.for_model("openai/gpt-3.5-turbo").tokenizer_name(), "cl100k_base");
        assert_eq!(counter.for_model("meta-llama/llama-3-70b").tokenizer_name(), "o200k_base");
        // Cached: the same answer, by content.
        assert_eq!(gpt4o.count("hello world"), 2);
        assert_eq!(gpt4o.count(""), 0);
        assert_eq!(gpt4o.message("hello world"), 2 + PER_MESSAGE);
    }

    #[test]
    fn a_bad_mapping_or_file_is_refused_at_start() {
        assert!(matches!(TokenCounter::new(&["no-equals".into()]), Err(TokenizerError::Mapping(_))));
        let missing = TokenCounter::new(&["meta-llama/=/nonexistent/tokenizer.json".into()]);
        assert!(matches!(missing, Err(TokenizerError::File { .. })));
    }

    #[test]
    fn a_mapped_tokenizer_file_counts_for_its_models() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokenizer.json");
        let tokenizer = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
            "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": {"hello": 0, "world": 1, "[UNK]": 2}, "unk_token": "[UNK]"}
        });
        std::fs::write(&path, tokenizer.to_string()).expect("write");
        let counter = TokenCounter::new(&[format!("meta-llama/={}", path.display())]).expect("counter");
        let llama = counter.for_model("meta-llama/llama-3-8b");
        assert_eq!(llama.tokenizer_name(), "tokenizer.json");
        assert_eq!(llama.count("hello world and more"), 4, "one token per word in this vocabulary");
        assert_eq!(counter.for_model("openai/gpt-4o").tokenizer_name(), "o200k_base", "other models keep tiktoken");
        // The same text counted by another tokenizer is cached apart.
        assert_ne!(counter.for_model("openai/gpt-4o").count("hello world and more"), 0);
    }
}
